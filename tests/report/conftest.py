"""Fixtures of the report tests: a stored candidate/baseline pair, the artifacts directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_fixtures import ARTIFACTS, StoredPair, sqlite_pair, store_pair
from sqlalchemy.orm import Session, sessionmaker


@pytest.fixture
def stored_pair(sessions: sessionmaker[Session]) -> StoredPair:
    return store_pair(sessions)


@pytest.fixture(scope="module")
def sqlite_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[sessionmaker[Session], StoredPair]]:
    """One SQLite store with the pair for a whole module (rendering needs no second DB)."""
    with sqlite_pair(tmp_path_factory.mktemp("store")) as store:
        yield store


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
