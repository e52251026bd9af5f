"""`observatory report RUN` and `observatory report index`: (re)write the static HTML reports."""

from __future__ import annotations

from pathlib import Path

import click

from observatory.cli.context import App, pass_app
from observatory.domain import MAX_ID
from observatory.errors import InputError
from observatory.report import (
    load_index_rows,
    load_report_input,
    render_index,
    render_run_report,
    reports_root,
)
from observatory.store import runs as store_runs
from observatory.store.db import transaction


@click.command("report")
@click.argument("target", metavar="RUN|index")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Report directory (default: <data_dir>/reports).",
)
@click.option(
    "--index/--no-index",
    "with_index",
    default=True,
    show_default=True,
    help="Also rewrite the index after a run's page.",
)
@pass_app
def report(app: App, target: str, out_dir: Path | None, with_index: bool) -> None:
    """Regenerate the report of RUN from the database, or the index with 'index'.

    RUN|index: a run id, or 'index' to rewrite the index and the release-history pages.
    """
    out = out_dir if out_dir is not None else reports_root(app.settings.data_dir)
    if target == "index":
        click.echo(f"index: {_write_index(app, out)}")
        return
    page = _write_run(app, _run_id(target), out)
    click.echo(f"report: {page}")
    if with_index:
        click.echo(f"index: {_write_index(app, out)}")


def _run_id(target: str) -> int:
    message = f"RUN must be a run id (a positive integer) or 'index'; got {target!r}"
    try:
        run_id = int(target)
    except ValueError:
        raise InputError(message) from None
    if not 1 <= run_id <= MAX_ID:
        raise InputError(message)
    return run_id


def _write_run(app: App, run_id: int, out: Path) -> Path:
    with transaction(app.sessions) as session:
        inp = load_report_input(
            session, run_id, neighbour_cpu=app.settings.thresholds.neighbour_cpu
        )
    page = render_run_report(inp, out)
    with transaction(app.sessions) as session:
        store_runs.get_run(session, run_id).report_path = str(page.resolve())
    return page


def _write_index(app: App, out: Path) -> Path:
    with transaction(app.sessions) as session:
        rows = load_index_rows(session, out)
    return render_index(rows, out)


COMMANDS = [report]
