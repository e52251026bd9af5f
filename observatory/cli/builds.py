"""`observatory builds list`."""

from __future__ import annotations

import click

from observatory.cli.context import App, pass_app
from observatory.store import builds as store_builds
from observatory.store.db import transaction


@click.group("builds")
def builds_group() -> None:
    """Gateway builds: configured and seen."""


@builds_group.command("list")
@pass_app
def list_cmd(app: App) -> None:
    """List builds (configured ones are registered on the way)."""
    with transaction(app.sessions) as session:
        store_builds.sync_configured(session, app.settings.builds)
        rows = store_builds.list_builds(session)
        click.echo(f"{'NAME':30} {'GATEWAY':10} {'VERSION':12} {'CHANNEL':10} SOURCE")
        for b in rows:
            click.echo(
                f"{b.name:30} {b.gateway:10} {b.version:12} {b.channel:10} {b.provision_kind}"
            )


COMMANDS = [builds_group]
