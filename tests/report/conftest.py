"""Fixtures of the report tests: a stored candidate/baseline pair, the artifacts directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import ARTIFACTS, StoredPair, store_pair
from sqlalchemy.orm import Session, sessionmaker


@pytest.fixture
def stored_pair(sessions: sessionmaker[Session]) -> StoredPair:
    return store_pair(sessions)


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
