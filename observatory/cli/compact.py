"""`observatory db compact`: merge old windows into coarser ones (retention).

Registered on the ``db`` group, next to the migration commands.
"""

from __future__ import annotations

import click

from observatory.cli.context import App, pass_app
from observatory.cli.db import db_group
from observatory.durations import format_duration
from observatory.service.retention import compact


@db_group.command("compact")
@pass_app
def compact_cmd(app: App) -> None:
    """Merge windows older than retention.windows_after into retention.coarse_window ones.

    Idempotent; never deletes data: HDR histograms merge exactly, findings stay.
    The service runs this daily by itself.
    """
    retention = app.settings.retention
    result = compact(app.settings, app.sessions)
    click.echo(
        f"merged {result.removed} window(s) older than {format_duration(retention.windows_after)}"
        f" into {result.written} window(s) of {format_duration(retention.coarse_window)}"
        f" in {result.runs} run(s)"
    )


COMMANDS: list[click.Command] = []
