"""`observatory runs list`."""

from __future__ import annotations

import click

from observatory.cli.context import ROW_ID, App, pass_app
from observatory.domain import RunStatus
from observatory.store import builds as store_builds
from observatory.store import runs as store_runs
from observatory.store.db import transaction
from observatory.store.tables import Run

REASON_WIDTH = 90  # `runs show` has the whole line


@click.group("runs")
def runs_group() -> None:
    """Load runs."""


@runs_group.command("list")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option(
    "--status",
    default=None,
    type=click.Choice([s.value for s in RunStatus]),
    help="Only runs with this lifecycle status.",
)
@click.option("--scenario", default=None, help="Only runs of this scenario.")
@pass_app
def list_cmd(app: App, limit: int, status: str | None, scenario: str | None) -> None:
    """List recent runs, newest first: build and version, scenario, verdict and why."""
    with transaction(app.sessions) as session:
        rows = store_runs.list_runs(session, limit=limit, status=status, scenario=scenario)
        names = store_builds.labels(session, (r.build_id for r in rows))
        click.echo(
            f"{'ID':>5}  {'BUILD':30} {'SCENARIO':14} {'STATUS':12} {'VERDICT':13} "
            f"{'CREATED':16}  WHY"
        )
        for r in rows:
            created = r.created_at.strftime("%Y-%m-%d %H:%M")
            click.echo(
                f"{r.id:>5}  {names.get(r.build_id, str(r.build_id)):30} {r.scenario:14} "
                f"{r.status:12} {r.verdict or '-':13} {created:16}  {_why(r)}"
            )


def _why(run: Run) -> str:
    text = run.verdict_reason or run.end_reason or ""
    return (
        text if len(text) <= REASON_WIDTH else text[: REASON_WIDTH - 1] + "\N{HORIZONTAL ELLIPSIS}"
    )


@runs_group.command("show")
@click.argument("run_id", type=ROW_ID)
@pass_app
def show(app: App, run_id: int) -> None:
    """Show one run: status, verdict, progress, baseline, report."""
    with transaction(app.sessions) as session:
        r = store_runs.get_run(session, run_id)
        build = store_builds.labels(session, [r.build_id]).get(r.build_id, str(r.build_id))
        fields = {
            "run": r.id,
            "scenario": r.scenario,
            "build": build,
            "role": r.role,
            "status": r.status,
            "verdict": r.verdict or "-",
            "why": r.verdict_reason or "-",
            "baseline run": r.baseline_run_id or "-",
            "end reason": r.end_reason or "-",
            "progress": r.progress or "-",
            "report": r.report_path or "-",
            "excluded": r.excluded,
        }
    for key, value in fields.items():
        click.echo(f"{key + ':':14} {value}")


@runs_group.command("cancel")
@click.argument("run_id", type=ROW_ID)
@pass_app
def cancel(app: App, run_id: int) -> None:
    """Stop a queued or running run (in any process); its data is kept, it ends aborted."""
    with transaction(app.sessions) as session:
        message = store_runs.request_cancel(session, run_id)
    click.echo(message)


@runs_group.command("exclude")
@click.argument("run_id", type=ROW_ID)
@click.option("--undo", is_flag=True, help="Make the run eligible as a baseline again.")
@pass_app
def exclude(app: App, run_id: int, undo: bool) -> None:
    """Keep a bad run from ever being chosen as a baseline."""
    with transaction(app.sessions) as session:
        store_runs.get_run(session, run_id).excluded = not undo
    click.echo(f"run {run_id} {'may again' if undo else 'will never'} be chosen as a baseline")


COMMANDS = [runs_group]
