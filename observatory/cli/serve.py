"""`observatory serve`: the HTTP API and report pages, schedules, the queue worker."""

from __future__ import annotations

import logging

import click

from observatory.cli.context import App, pass_app
from observatory.service.runtime import Service


@click.command("serve")
@click.option("--host", default=None, help="Bind address (default: service.host).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port (default: service.port; 0 = any).",
)
@click.option("--no-worker", is_flag=True, help="Do not execute queued runs on this host.")
@click.option("--no-scheduler", is_flag=True, help="Do not fire the configured schedules.")
@pass_app
def serve(app: App, host: str | None, port: int | None, no_worker: bool, no_scheduler: bool) -> int:
    """Run the service until SIGTERM or Ctrl-C (runs in progress then end aborted).

    Migrates the database first, then recovers runs left by a previous service that stopped
    (interrupted, partial report, one alert) and kills the processes it left behind.
    """
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    service = Service(
        app.settings,
        app.engine,
        host=host,
        port=port,
        worker=not no_worker,
        scheduler=not no_scheduler,
    )
    return service.run()


COMMANDS = [serve]
