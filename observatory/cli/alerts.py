"""`observatory alerts list | retry ID | test | deliver`."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from observatory.cli.context import ROW_ID, App, pass_app
from observatory.domain import AlertState
from observatory.durations import parse_duration
from observatory.errors import ConfigError, InputError, NotifyError
from observatory.notify.outbox import deliver_due, run_delivery_loop
from observatory.notify.payload import sample_payload
from observatory.notify.slack import make_target
from observatory.store import alerts as store_alerts
from observatory.store.db import transaction
from observatory.store.tables import AlertRow, utcnow

NOT_CONFIGURED = (
    "Slack is not configured: set slack.webhook_url, or slack.token and slack.channel "
    "(environment: OBSERVATORY_SLACK__WEBHOOK_URL, or OBSERVATORY_SLACK__TOKEN and "
    "OBSERVATORY_SLACK__CHANNEL)"
)


@click.group("alerts")
def alerts_group() -> None:
    """Slack alerts: the outbox and its delivery."""


@alerts_group.command("list")
@click.option(
    "--state",
    default=None,
    type=click.Choice([s.value for s in AlertState]),
    help="Only this state.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@pass_app
def list_cmd(app: App, state: str | None, limit: int) -> None:
    """List alerts, newest first."""
    wanted = AlertState(state) if state is not None else None
    with transaction(app.sessions) as session:
        rows = store_alerts.list_alerts(session, state=wanted, limit=limit)
        click.echo(
            f"{'ID':>6} {'RUN':>6} {'KIND':12} {'STATE':8} {'TRIES':>5} {'CREATED':16} ERROR"
        )
        for row in rows:
            click.echo(_line(row))


def _line(row: AlertRow) -> str:
    run = str(row.run_id) if row.run_id is not None else "-"
    created = row.created_at.strftime("%Y-%m-%d %H:%M")
    error = (row.last_error or "-").replace("\n", " ")
    error = error if len(error) <= 80 else error[:77] + "..."
    return (
        f"{row.id:>6} {run:>6} {row.kind:12} {row.state:8} {row.attempts:>5} {created:16} {error}"
    )


@alerts_group.command("retry")
@click.argument("alert_id", type=ROW_ID)
@pass_app
def retry_cmd(app: App, alert_id: int) -> None:
    """Make failed alert ALERT_ID pending and due now."""
    with transaction(app.sessions) as session:
        row = store_alerts.retry(session, alert_id, utcnow())
        click.echo(f"alert {row.id} is pending again (run {row.run_id}, {row.kind})")


@alerts_group.command("test")
@pass_app
def test_cmd(app: App) -> None:
    """Send a sample message to the configured Slack target (not through the outbox)."""
    settings = app.settings
    target = make_target(settings.slack)
    if target is None:
        raise ConfigError(NOT_CONFIGURED)
    delivery = target.post(sample_payload(settings.service.public_base_url))
    if not delivery.acknowledged:
        raise NotifyError(f"test message to {target.label} failed: {delivery.error}")
    ts = f" (ts {delivery.ts})" if delivery.ts else ""
    click.echo(f"test message acknowledged by {target.label}{ts}")


@alerts_group.command("deliver")
@click.option("--once", is_flag=True, help="One round of due alerts, then exit.")
@click.option("--interval", default="5s", show_default=True, help="Pause between rounds.")
@pass_app
def deliver_cmd(app: App, once: bool, interval: str) -> None:
    """Run the delivery loop by hand (until Ctrl-C / SIGTERM, or once)."""
    seconds = _interval(interval)
    _log_to_stderr()
    settings = app.settings
    if once:
        done = deliver_due(app.sessions, settings)
        click.echo(f"{done} alert(s) delivered")
        return
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    target = "log only (Slack not configured)" if not settings.slack.configured else "Slack"
    click.echo(f"delivering alerts to {target} every {interval}; Ctrl-C stops", err=True)
    run_delivery_loop(app.sessions, settings, stop, seconds)


def _interval(text: str) -> float:
    seconds = parse_duration(text)
    if not 0.05 <= seconds <= 3600:
        raise InputError(f"--interval {text!r} must be between 50ms and 1h")
    return seconds


def _log_to_stderr() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


COMMANDS = [alerts_group]
