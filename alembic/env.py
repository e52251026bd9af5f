"""Alembic environment: the engine comes from observatory.store.db (never from a URL here)."""

from __future__ import annotations

from sqlalchemy import Engine

from alembic import context
from observatory.store.tables import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine: Engine | None = context.config.attributes.get("engine")
    if engine is None:
        url = context.config.get_main_option("sqlalchemy.url")
        if not url:
            raise RuntimeError("use `observatory db upgrade`, or set sqlalchemy.url")
        from observatory.store.db import make_engine

        engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
