"""Fixtures of the report tests: a stored candidate/baseline pair, the artifacts directory,
headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright; skipped without it (a failure under CI=true)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file() or shutil.which("chromium") is None:
        reason = f"{CHROMIUM} missing: apt-get install chromium chromium-driver (make browser)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
