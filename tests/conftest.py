"""Shared fixtures: real SQLite (tmp_path) and the real Postgres on 127.0.0.1:5432.

Postgres tests skip with a visible reason when the server is unreachable, except
under CI=true where they must run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psutil
import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from observatory.store import db
from observatory.store.tables import Base
from tests.processes import children_of_us

PG_ADMIN_DSN = os.environ.get(
    "OBSERVATORY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
)
PG_DIALECT = "postgresql+psycopg"


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_DSN, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"Postgres at {PG_ADMIN_DSN} unreachable: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="module", autouse=True)
def no_process_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test module stops every process it started (servers, gateways, Locust)."""
    before = {p.pid for p in children_of_us()}
    yield
    _, alive = psutil.wait_procs(_new_children(before), timeout=10)
    for process in alive:
        process.kill()
    leaked = [_describe(p) for p in alive]
    assert not leaked, f"{request.node.nodeid} left processes running: {leaked}"


def _new_children(before: set[int]) -> list[psutil.Process]:
    return [p for p in children_of_us() if p.pid not in before]


def _describe(process: psutil.Process) -> str:
    try:
        return f"{process.pid} {' '.join(process.cmdline())[:200]}"
    except psutil.Error:
        return str(process.pid)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh Postgres database for this test session, dropped at the end."""
    reason = _pg_available()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires Postgres: {reason}")
        pytest.skip(reason)
    name = f"observatory_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", f"{PG_DIALECT}://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database URL with an empty database: SQLite in a temp dir, or the test Postgres."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'observatory.db'}"
    url: str = request.getfixturevalue("pg_database")
    return url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database migrated to head; emptied afterwards; no leaked connections."""
    eng = db.make_engine(db_url)
    db.upgrade(eng)
    yield eng
    checked_out = eng.pool.checkedout()  # type: ignore[attr-defined]
    with eng.begin() as conn:
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    eng.dispose()
    assert checked_out == 0, f"{checked_out} connection(s) left checked out by the test"


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)
