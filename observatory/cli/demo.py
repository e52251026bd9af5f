"""`observatory demo`: a compressed, real release validation of two LiteLLM releases.

Uses docs/demo.yaml unless --config is given: provisions both builds from PyPI (cached
venvs), runs the stable build then the candidate on the lifecycle scenario, analyses, writes
the reports, shows the Slack message it would send, and leaves no process behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import psutil
from sqlalchemy import select

from observatory.cli.context import App
from observatory.cli.run import exit_code, validate_here
from observatory.conclude import write_index
from observatory.domain import ExitCode, TriggerSource
from observatory.durations import parse_duration
from observatory.settings import PROJECT_ROOT
from observatory.store.db import transaction
from observatory.store.tables import AlertRow
from observatory.validation import ValidationRequest

DEMO_CONFIG = PROJECT_ROOT / "docs" / "demo.yaml"


@click.command("demo")
@click.option("--duration", default=None, help="Per-build duration (default: the config's, 3m).")
@click.option("--build", default="litellm-candidate", show_default=True)
@click.option("--scenario", default="lifecycle", show_default=True)
@click.pass_context
def demo(ctx: click.Context, duration: str | None, build: str, scenario: str) -> int:
    """Validate a LiteLLM candidate against the stable release, end to end, in minutes."""
    app: App = ctx.obj
    if app.config_path is None:
        app.config_path = DEMO_CONFIG
    request = ValidationRequest(
        build=build,
        scenarios=(scenario,),
        source=TriggerSource.CLI,
        duration_s=parse_duration(duration) if duration else None,
        tag="demo",
        requester="make demo",
    )
    planned, outcomes = validate_here(app, request)
    write_index(app.settings, app.sessions)
    _show_alerts(app, planned.candidate_run_ids)
    candidates = [o for o in outcomes if o.run_id in planned.candidate_run_ids]
    for outcome in candidates:
        click.echo(f"verdict of run {outcome.run_id}: {outcome.verdict or outcome.status}")
        click.echo(f"report: {outcome.report_path}")
    click.echo(f"index:  {app.settings.data_dir / 'reports' / 'index.html'}")
    click.echo(
        f"browse: make serve CONFIG={_relative(app.config_path)}  (then http://127.0.0.1:8700/)"
    )
    _check_no_leftovers()
    code = exit_code(candidates)
    # A verdict (pass, regression, inconclusive) is the demo working; only our failures fail it.
    return code if code in (ExitCode.INTERNAL, ExitCode.BAD_INPUT) else int(ExitCode.OK)


def _show_alerts(app: App, run_ids: tuple[int, ...]) -> None:
    slack = (
        "sent to Slack" if app.settings.slack.configured else "would send (Slack not configured)"
    )
    with transaction(app.sessions) as session:
        rows = session.scalars(select(AlertRow).where(AlertRow.run_id.in_(run_ids))).all()
        for row in rows:
            click.echo(f"\nSlack message {slack}, state {row.state}:")
            click.echo(f"  {row.payload.get('text', '')}")
            click.echo(json.dumps(row.payload.get("blocks", []), indent=1)[:4000])


def _relative(path: Path | None) -> str:
    if path is None:
        return "observatory.yaml"
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_no_leftovers() -> None:
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    if left:
        names = ", ".join(f"{p.pid} {p.name()}" for p in left)
        raise click.ClickException(f"processes left running: {names}")
    click.echo("no process left running")


COMMANDS = [demo]
