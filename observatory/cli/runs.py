"""`observatory runs list`."""

from __future__ import annotations

import click

from observatory.cli.context import App, pass_app
from observatory.store import runs as store_runs
from observatory.store.db import transaction


@click.group("runs")
def runs_group() -> None:
    """Load runs."""


@runs_group.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--status", default=None, help="Only runs with this lifecycle status.")
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@pass_app
def list_cmd(app: App, limit: int, status: str | None, scenario: str | None) -> None:
    """List recent runs, newest first."""
    with transaction(app.sessions) as session:
        rows = store_runs.list_runs(session, limit=limit, status=status, scenario=scenario)
        click.echo(f"{'ID':>6} {'SCENARIO':20} {'BUILD':>6} {'STATUS':12} {'VERDICT':13} CREATED")
        for r in rows:
            created = r.created_at.strftime("%Y-%m-%d %H:%M")
            verdict = r.verdict or "-"
            click.echo(
                f"{r.id:>6} {r.scenario:20} {r.build_id:>6} {r.status:12} {verdict:13} {created}"
            )


COMMANDS = [runs_group]
