"""`observatory db upgrade|downgrade|current`."""

from __future__ import annotations

import click

from observatory.cli.context import App, pass_app
from observatory.store import db


@click.group("db")
def db_group() -> None:
    """Database schema migrations (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
@pass_app
def upgrade(app: App, revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    db.upgrade(app.engine, revision)
    click.echo(f"{db.safe_url(app.engine)}: at revision {db.current_revision(app.engine)}")


@db_group.command("downgrade")
@click.argument("revision")
@pass_app
def downgrade(app: App, revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every table)."""
    db.downgrade(app.engine, revision)
    click.echo(f"{db.safe_url(app.engine)}: at revision {db.current_revision(app.engine)}")


@db_group.command("current")
@pass_app
def current(app: App) -> None:
    """Print the database's current revision."""
    empty = "empty (run `observatory db upgrade`)"
    if db.missing_sqlite_file(app.settings.db_url) is not None:
        click.echo(empty)  # connecting would leave an empty database file behind
        return
    click.echo(db.current_revision(app.engine) or empty)


COMMANDS = [db_group]
