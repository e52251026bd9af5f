"""Engines, sessions and migrations for SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from alembic import command
from observatory.errors import InputError, StoreError

NOT_INITIALISED = "database not initialised: run `observatory db upgrade` first"

ALEMBIC_DIR = Path(__file__).resolve().parent.parent.parent / "alembic"


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error, StoreError on DB failure."""
    session = factory()
    try:
        yield session
        session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StoreError(f"database error: {type(exc).__name__}: {_first_line(exc)}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _first_line(exc: SQLAlchemyError) -> str:
    # str(exc) may carry bound parameters; the original driver message's first line is enough.
    origin = getattr(exc, "orig", None) or exc
    return str(origin).splitlines()[0][:300] if str(origin) else type(origin).__name__


def _alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    try:
        command.upgrade(_alembic_config(engine), revision)
    except CommandError as exc:
        raise _bad_revision(revision, exc) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"migration to {revision!r} failed: {_first_line(exc)}") from exc


def downgrade(engine: Engine, revision: str) -> None:
    try:
        command.downgrade(_alembic_config(engine), revision)
    except CommandError as exc:
        raise _bad_revision(revision, exc) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"downgrade to {revision!r} failed: {_first_line(exc)}") from exc


def _bad_revision(revision: str, exc: CommandError) -> InputError:
    return InputError(
        f"revision {revision!r}: {exc}; accepted: head, base, or a revision id "
        "(`observatory db current` prints the current one)"
    )


def current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
            return None if row is None else str(row[0])
    except SQLAlchemyError as exc:
        raise StoreError(f"database error: {type(exc).__name__}: {_first_line(exc)}") from exc


def missing_sqlite_file(url: str) -> Path | None:
    """The SQLite file ``url`` names when it does not exist yet (connecting would create it)."""
    if not url.startswith("sqlite:///"):
        return None
    path = Path(url.removeprefix("sqlite:///"))
    return None if path.is_file() else path


def require_schema(engine: Engine) -> None:
    """Raise InputError when the database has no schema yet (``db upgrade`` never ran)."""
    if current_revision(engine) is None:
        raise InputError(NOT_INITIALISED)


def safe_url(engine: Engine) -> str:
    """The engine URL with any password hidden, for printing."""
    return engine.url.render_as_string(hide_password=True)
