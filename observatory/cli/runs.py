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
    """List recent runs, newest first, each with the line that explains its verdict."""
    with transaction(app.sessions) as session:
        rows = store_runs.list_runs(session, limit=limit, status=status, scenario=scenario)
        click.echo(
            f"{'ID':>6} {'SCENARIO':20} {'BUILD':>6} {'STATUS':12} {'VERDICT':13} "
            f"{'CREATED':16} REASON"
        )
        for r in rows:
            created = r.created_at.strftime("%Y-%m-%d %H:%M")
            verdict = r.verdict or "-"
            reason = r.verdict_reason or r.end_reason or "-"
            click.echo(
                f"{r.id:>6} {r.scenario:20} {r.build_id:>6} {r.status:12} {verdict:13} "
                f"{created:16} {reason}"
            )


@runs_group.command("show")
@click.argument("run_id", type=int)
@pass_app
def show(app: App, run_id: int) -> None:
    """Show one run: status, verdict, progress, baseline, report."""
    with transaction(app.sessions) as session:
        r = store_runs.get_run(session, run_id)
        fields = {
            "run": r.id,
            "scenario": r.scenario,
            "build": r.build_id,
            "role": r.role,
            "status": r.status,
            "verdict": r.verdict or "-",
            "baseline run": r.baseline_run_id or "-",
            "end reason": r.end_reason or "-",
            "progress": r.progress or "-",
            "report": r.report_path or "-",
            "excluded": r.excluded,
        }
    for key, value in fields.items():
        click.echo(f"{key + ':':14} {value}")


@runs_group.command("cancel")
@click.argument("run_id", type=int)
@pass_app
def cancel(app: App, run_id: int) -> None:
    """Stop a queued or running run (in any process); its data is kept, it ends aborted."""
    with transaction(app.sessions) as session:
        message = store_runs.request_cancel(session, run_id)
    click.echo(message)


@runs_group.command("exclude")
@click.argument("run_id", type=int)
@click.option("--undo", is_flag=True, help="Make the run eligible as a baseline again.")
@pass_app
def exclude(app: App, run_id: int, undo: bool) -> None:
    """Keep a bad run from ever being chosen as a baseline."""
    with transaction(app.sessions) as session:
        store_runs.get_run(session, run_id).excluded = not undo
    click.echo(f"run {run_id} {'may again' if undo else 'will never'} be chosen as a baseline")


COMMANDS = [runs_group]
