"""What every command needs, built lazily once: settings, engine, sessions."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import MAX_ID
from observatory.errors import InputError
from observatory.settings import Settings, check_targets, load_settings
from observatory.store.db import (
    NOT_INITIALISED,
    make_engine,
    missing_sqlite_file,
    require_schema,
    session_factory,
)


class App:
    """Holds the composition of one CLI invocation."""

    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None
        self._engine: Engine | None = None
        self._schema_checked = False

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            settings = load_settings(self.config_path)
            check_targets(settings)  # refused now, not when a run provisions
            self._settings = settings
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.db_url)
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on a migrated database; InputError (exit 2) before ``db upgrade``."""
        if not self._schema_checked:
            missing = missing_sqlite_file(self.settings.db_url)
            if missing is not None:
                raise InputError(f"{NOT_INITIALISED} ({missing} does not exist)")
            require_schema(self.engine)
            self._schema_checked = True
        return session_factory(self.engine)


pass_app = click.make_pass_decorator(App)

ROW_ID = click.IntRange(1, MAX_ID)  # a run or alert id: anything else is refused by click
