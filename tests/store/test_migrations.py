from __future__ import annotations

from sqlalchemy import inspect

from observatory.store import db
from observatory.store.tables import Base


def test_upgrade_creates_every_table_and_downgrade_removes_them(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine)
        assert db.current_revision(engine) is not None
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        db.downgrade(engine, "base")
        assert set(inspect(engine).get_table_names()) & set(Base.metadata.tables) == set()
        db.upgrade(engine)  # and back up again: the downgrade left nothing behind
        assert db.current_revision(engine) is not None
        db.downgrade(engine, "base")
    finally:
        engine.dispose()


def test_migrations_match_the_models(db_url: str) -> None:
    """A model change without a new Alembic revision fails here."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
        db.downgrade(engine, "base")
    finally:
        engine.dispose()


def test_0002_adds_verdict_reason_and_keeps_existing_rows(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, "0001")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO builds (name, gateway, version, provision_kind, provision, channel,"
                " created_at) VALUES ('b', 'litellm', '1.0', 'pip', '{}', 'stable',"
                " CURRENT_TIMESTAMP)"
            )
        columns = {c["name"] for c in inspect(engine).get_columns("runs")}
        assert "verdict_reason" not in columns
        db.upgrade(engine, "0002")
        assert db.current_revision(engine) == "0002"
        assert "verdict_reason" in {c["name"] for c in inspect(engine).get_columns("runs")}
        db.downgrade(engine, "0001")
        assert "verdict_reason" not in {c["name"] for c in inspect(engine).get_columns("runs")}
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT name FROM builds").scalar() == "b"
        db.downgrade(engine, "base")
    finally:
        engine.dispose()


def test_0003_adds_log_bytes_to_resource_samples(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        db.upgrade(engine, "0002")
        assert "log_bytes" not in {
            c["name"] for c in inspect(engine).get_columns("resource_samples")
        }
        db.upgrade(engine)
        assert "log_bytes" in {c["name"] for c in inspect(engine).get_columns("resource_samples")}
        db.downgrade(engine, "0002")
        assert "log_bytes" not in {
            c["name"] for c in inspect(engine).get_columns("resource_samples")
        }
        db.downgrade(engine, "base")
    finally:
        engine.dispose()
