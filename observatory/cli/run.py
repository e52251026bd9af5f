"""`observatory run`: one validation end to end, in this process, with a live progress line.

The runs it plans are held by this process from the start (no service worker sharing the
database claims them), and a lease keeper renews their leases for as long as it lives:
provisioning, load, analysis. Runs it stops before beginning end ``aborted``.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from types import FrameType

import click

from observatory.cli.context import App, pass_app
from observatory.domain import ExitCode, RunStatus, TriggerSource, Verdict
from observatory.durations import format_duration, parse_duration
from observatory.environment import host_facts, host_fingerprint
from observatory.errors import InputError
from observatory.notify.outbox import deliver_due
from observatory.pipeline import (
    Outcome,
    Progress,
    RunContext,
    execute_run,
    execute_side_by_side,
)
from observatory.service.lease import LeaseKeeper
from observatory.service.owner import database_id, this_process
from observatory.store import queue
from observatory.store.db import transaction, upgrade
from observatory.validation import Plan, ValidationRequest, plan


@click.command("run")
@click.option("--build", "build", required=True, help="Configured build name or 'litellm==X.Y.Z'.")
@click.option(
    "--scenario", "scenarios", multiple=True, required=True, help="Scenario (repeatable)."
)
@click.option("--duration", default=None, help="Override the scenario duration, e.g. 5m, 24h.")
@click.option(
    "--baseline",
    default="auto",
    show_default=True,
    help="auto (the configured policy), none, alongside (the last stable build measured "
    "side by side with BUILD), or a run id.",
)
@click.option("--tag", default=None, help="Release tag, e.g. v1.81.9.")
@pass_app
def run_cmd(
    app: App,
    build: str,
    scenarios: tuple[str, ...],
    duration: str | None,
    baseline: str,
    tag: str | None,
) -> int:
    """Validate BUILD: queue its runs (a baseline first if needed) and execute them here."""
    request = ValidationRequest(
        build=build,
        scenarios=scenarios,
        source=TriggerSource.CLI,
        duration_s=_duration(duration),
        tag=tag,
        requester=_requester(),
        baseline=baseline,
    )
    planned, outcomes = validate_here(app, request)
    return exit_code([o for o in outcomes if o.run_id in planned.candidate_run_ids])


def validate_here(
    app: App, request: ValidationRequest, *, progress_every_s: float = 10.0
) -> tuple[Plan, list[Outcome]]:
    """Plan the validation, execute its runs in this process, then deliver its alerts once.

    ``progress_every_s``: how often a progress line is printed when stderr is not a terminal.
    """
    upgrade(app.engine)
    # An owner id with our pid: if this process is killed, a service on the same database
    # takes its runs back when their leases expire and stops its gateway and Locust.
    worker = str(this_process("cli", database_id(app.engine)))
    with transaction(app.sessions) as session:
        planned = plan(session, app.settings, request, host_fingerprint(host_facts()))
        queue.hold(session, planned.run_ids, worker, app.settings.service.lease)
    _announce(planned)
    outcomes = _execute_all(app, planned, worker, ProgressPrinter(progress_every_s))
    deliver_due(app.sessions, app.settings)  # sent, or logged when Slack is not configured
    return planned, outcomes


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except InputError as exc:
        raise InputError(f"--duration: {exc}") from None


def _requester() -> str:
    return f"{_user()}@{socket.gethostname()}"


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _announce(planned: Plan) -> None:
    click.echo(f"validation {planned.validation_id}: runs {', '.join(map(str, planned.run_ids))}")
    for note in planned.notes:
        click.echo(f"  {note}")


def _execute_all(app: App, planned: Plan, worker: str, printer: ProgressPrinter) -> list[Outcome]:
    stop = threading.Event()
    ctx = RunContext(app.settings, app.sessions, worker=worker, stop=stop, on_progress=printer)
    outcomes: list[Outcome] = []
    with _ctrl_c_sets(stop), _leases_kept(app, planned.run_ids, worker, stop):
        for run_id in planned.run_ids:
            if stop.is_set():
                break
            if any(o.run_id == run_id for o in outcomes):
                continue  # measured side by side with its baseline
            with transaction(app.sessions) as session:
                partner = queue.alongside_of(session, run_id)
            if partner is None:
                ended = [execute_run(run_id, ctx)]
            else:
                ended = execute_side_by_side(run_id, partner, ctx)
            printer.done()
            for outcome in ended:
                _print_outcome(outcome)
            outcomes.extend(ended)
    return outcomes


@contextmanager
def _leases_kept(
    app: App, run_ids: tuple[int, ...], worker: str, stop: threading.Event
) -> Iterator[None]:
    """Renew every planned run's lease meanwhile; then end the runs never begun."""
    lease_s = app.settings.service.lease
    try:
        with ExitStack() as keepers:
            for run_id in run_ids:
                keepers.enter_context(
                    LeaseKeeper(app.sessions, run_id, worker, lease_s, stop, stop)
                )
            yield
    finally:
        with transaction(app.sessions) as session:
            queue.abandon(session, worker, "not run: the CLI stopped before it began")


@contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C stops the run cleanly (data kept, run aborted); a second one is immediate."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        click.echo("\nstopping: the run will be marked aborted (Ctrl-C again to force)", err=True)
        stop.set()

    previous: Callable[[int, FrameType | None], object] | int | None = signal.signal(
        signal.SIGINT, handler
    )
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_outcome(outcome: Outcome) -> None:
    verdict = outcome.verdict or "-"
    click.echo(f"run {outcome.run_id}: {outcome.status} verdict={verdict}: {outcome.reason}")
    if outcome.report_path is not None:
        click.echo(f"  report: {outcome.report_path}")


def exit_code(outcomes: list[Outcome]) -> int:
    """Worst candidate outcome wins: error 4 > regression 1 > inconclusive 3 > pass 0."""
    codes = [_code(o) for o in outcomes] or [ExitCode.INTERNAL]
    for code in (ExitCode.INTERNAL, ExitCode.REGRESSION, ExitCode.INCONCLUSIVE):
        if code in codes:
            return int(code)
    return int(ExitCode.OK)


def _code(outcome: Outcome) -> ExitCode:
    if outcome.status in (RunStatus.ERROR, RunStatus.INTERRUPTED):
        return ExitCode.INTERNAL
    if outcome.verdict is None:  # aborted: no verdict to gate on
        return ExitCode.INCONCLUSIVE
    return Verdict(outcome.verdict).exit_code


class ProgressPrinter:
    """A live status line: in place on a terminal, a line every 10 s per run in logs."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.tty = sys.stderr.isatty()
        self.every_s = every_s
        self._last: dict[int, float] = {}  # per run: runs side by side report in turns

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        recent = now - self._last.get(p.run_id, 0.0) < self.every_s
        if not self.tty and recent and p.status == RunStatus.RUNNING:
            return
        self._last[p.run_id] = now
        line = format_progress(p)
        if self.tty:
            click.echo(f"\r\x1b[2K{line}", err=True, nl=False)
        else:
            click.echo(line, err=True)

    def done(self) -> None:
        if self.tty:
            click.echo("", err=True)


def format_progress(p: Progress) -> str:
    elapsed = format_duration(max(p.elapsed_s, 0.0)) if p.elapsed_s >= 1 else "0s"
    remaining = p.duration_s - p.elapsed_s
    left = format_duration(remaining) if remaining >= 1 else "0s"
    parts = [f"run {p.run_id} {p.scenario} [{p.status}] {elapsed} elapsed, {left} left"]
    if p.rps is not None:
        parts.append(f"{p.rps:.1f} req/s")
    if p.p99_ms is not None:
        parts.append(f"p99 {p.p99_ms:.1f} ms")
    if p.error_rate is not None:
        parts.append(f"errors {p.error_rate:.2%}")
    if p.gateway_rss_mb is not None:
        parts.append(f"gateway {p.gateway_rss_mb:.0f} MB")
    if p.neighbours_cores is not None:
        parts.append(f"others on host {p.neighbours_cores:.2f} cores")
    return " | ".join(parts)


COMMANDS = [run_cmd]
