"""`observatory demo`: a compressed, real release validation on two LiteLLM releases.

Uses docs/demo.yaml unless --config is given: provisions the builds from PyPI (cached
venvs), runs the stable release on the lifecycle scenario, then the newer release against
it, then the stable release with a known injected fault (one broken gpt-4o deployment)
against the same baseline run: a comparison the observatory must decide. Then it prints,
per candidate, the verdict, its top findings, the report and the Slack message as a
channel shows it, and leaves no process behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
import psutil
from sqlalchemy import select

from observatory.cli.context import App
from observatory.cli.run import exit_code, validate_here
from observatory.conclude import write_index
from observatory.domain import ExitCode, TriggerSource, Verdict
from observatory.durations import parse_duration
from observatory.errors import InputError
from observatory.notify.text import channel_text
from observatory.pipeline import Outcome
from observatory.report.load import stored_findings
from observatory.report.words import top_findings
from observatory.settings import PROJECT_ROOT
from observatory.store.db import transaction
from observatory.store.tables import AlertRow, Build, Run
from observatory.validation import ValidationRequest

DEMO_CONFIG = PROJECT_ROOT / "docs" / "demo.yaml"
FAULT_BUILD = "litellm-stable-faulty"
QUIET_PROGRESS_S = 60.0  # progress lines in a log (not a terminal) without -v


@dataclass(frozen=True)
class Story:
    """What the demo tells about one candidate run."""

    run_id: int
    title: str  # "litellm-candidate 1.83.14 vs litellm-stable 1.81.9 (run 1)"
    verdict: str
    reason: str
    findings: list[str]
    report: Path | None
    slack: list[dict[str, object]]  # the alert payloads written for the run


@click.command("demo")
@click.option("--duration", default=None, help="Per-run duration (default: the config's).")
@click.option("--build", default="litellm-candidate", show_default=True)
@click.option(
    "--fault-build",
    default=FAULT_BUILD,
    show_default=True,
    help="A build with a known fault, compared with the same baseline; 'none' to skip.",
)
@click.option("--scenario", default="lifecycle", show_default=True)
@click.option("-v", "--verbose", is_flag=True, help="A progress line every 10 s in logs.")
@click.option("--slack-json", is_flag=True, help="Also print the Slack Block Kit JSON.")
@click.pass_context
def demo(
    ctx: click.Context,
    duration: str | None,
    build: str,
    fault_build: str,
    scenario: str,
    verbose: bool,
    slack_json: bool,
) -> int:
    """Validate a LiteLLM release, and a faulty build, against the stable release."""
    app: App = ctx.obj
    if app.config_path is None:
        app.config_path = DEMO_CONFIG
    every = 10.0 if verbose else QUIET_PROGRESS_S
    faulty = _fault_build(app, fault_build)
    first = _request(build, scenario, duration)
    planned, outcomes = validate_here(app, first, progress_every_s=every)
    candidates = [o for o in outcomes if o.run_id in planned.candidate_run_ids]
    baseline = _baseline_of(app, candidates)
    if faulty is not None and baseline is not None:
        again = _request(faulty, scenario, duration, baseline=str(baseline))
        more, ended = validate_here(app, again, progress_every_s=every)
        candidates += [o for o in ended if o.run_id in more.candidate_run_ids]
    write_index(app.settings, app.sessions)
    stories = [_story(app, o) for o in candidates]
    for story in stories:
        _tell(story, app.settings.slack.configured, slack_json)
    _check_no_leftovers()
    _closing(app, stories)
    code = exit_code(candidates)
    # A verdict (pass, regression, inconclusive) is the demo working; only our failures fail it.
    return code if code in (ExitCode.INTERNAL, ExitCode.BAD_INPUT) else int(ExitCode.OK)


def _fault_build(app: App, name: str) -> str | None:
    """The faulty build to validate too: None for 'none', or when the config has none."""
    if name == "none":
        return None
    if name in app.settings.builds:
        return name
    if name == FAULT_BUILD:
        click.echo(f"{_relative(app.config_path)} has no {FAULT_BUILD} build: skipping it")
        return None
    known = ", ".join(sorted(app.settings.builds)) or "none configured"
    raise InputError(f"--fault-build: unknown build {name!r}; configured: {known}; or 'none'")


def _request(
    build: str, scenario: str, duration: str | None, baseline: str = "auto"
) -> ValidationRequest:
    return ValidationRequest(
        build=build,
        scenarios=(scenario,),
        source=TriggerSource.CLI,
        duration_s=parse_duration(duration) if duration else None,
        tag="demo",
        requester="make demo",
        baseline=baseline,
    )


def _baseline_of(app: App, candidates: list[Outcome]) -> int | None:
    """The baseline run the first candidate was compared with (the fault run reuses it)."""
    if not candidates:
        return None
    with transaction(app.sessions) as session:
        run = session.get(Run, candidates[0].run_id)
        return None if run is None else run.baseline_run_id


def _story(app: App, outcome: Outcome) -> Story:
    with transaction(app.sessions) as session:
        run = session.get(Run, outcome.run_id)
        assert run is not None
        title = _name(session.get(Build, run.build_id))
        if run.baseline_run_id is not None:
            base = session.get(Run, run.baseline_run_id)
            base_build = None if base is None else session.get(Build, base.build_id)
            title += f" vs {_name(base_build)} (run {run.baseline_run_id})"
        query = select(AlertRow).where(AlertRow.run_id == run.id).order_by(AlertRow.id)
        slack = [dict(row.payload) for row in session.scalars(query)]
        findings = top_findings(stored_findings(session, run.id), reason=outcome.reason)
    return Story(
        run_id=outcome.run_id,
        title=title,
        verdict=outcome.verdict or outcome.status,
        reason=outcome.reason,
        findings=findings,
        report=outcome.report_path,
        slack=slack,
    )


def _name(build: Build | None) -> str:
    return "?" if build is None else f"{build.name} {build.version}"


def _tell(story: Story, slack_configured: bool, slack_json: bool) -> None:
    click.echo(f"\n== run {story.run_id}: {story.title}")
    click.echo(f"{story.verdict.replace('_', ' ').upper()}: {story.reason}")
    for line in story.findings:
        click.echo(f"  - {line}")
    click.echo(f"  report: {_relative(story.report)}")
    if not story.slack:
        click.echo("  Slack: no message (slack.notify_on leaves this verdict out)")
    for payload in story.slack:
        how = "sent to Slack" if slack_configured else "would send (Slack not configured)"
        click.echo(f"  Slack message {how}:")
        for line in channel_text(payload).splitlines():
            click.echo(f"  | {line}")
        if slack_json:
            click.echo(json.dumps(payload, indent=1))


def _closing(app: App, stories: list[Story]) -> None:
    caught = [s for s in stories if s.verdict == Verdict.REGRESSION]
    shown = caught[-1] if caught else (stories[-1] if stories else None)
    if shown is not None and shown.report is not None:
        what = "the regression it caught" if caught else "what it found"
        click.echo(f"\nOpen {_relative(shown.report)} to see {what}.")
    config = _relative(app.config_path)
    click.echo(f"All runs: make serve CONFIG={config}, then http://127.0.0.1:8700/")


def _relative(path: Path | None) -> str:
    if path is None:
        return "-"
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _check_no_leftovers() -> None:
    left = [p for p in psutil.Process().children(recursive=True) if p.is_running()]
    if left:
        names = ", ".join(f"{p.pid} {p.name()}" for p in left)
        raise click.ClickException(f"processes left running: {names}")
    click.echo("\nno process left running")


COMMANDS = [demo]
