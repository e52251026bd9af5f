"""`observatory promote BUILD`: mark a build stable, a baseline from now on."""

from __future__ import annotations

import click

from observatory.cli.context import App, pass_app
from observatory.store import builds
from observatory.store.db import transaction


@click.command("promote")
@click.argument("build")
@pass_app
def promote(app: App, build: str) -> None:
    """Mark BUILD (a build name, see `builds list`) stable."""
    with transaction(app.sessions) as session:
        builds.sync_configured(session, app.settings.builds)
        row = builds.promote(session, build)
        click.echo(f"{row.name} ({row.gateway} {row.version}) is now stable")


COMMANDS = [promote]
