"""HTML reports: one page per run, a static index and release-history pages.

The pipeline (or ``observatory report RUN``) builds a ``ReportInput`` with
``load_report_input`` and writes the page with ``render_run_report``; ``render_index``
rewrites the index from ``load_index_rows``. Pages work offline: shared assets (uPlot,
CSS, JS) are copied once into ``<out_dir>/static``.
"""

from __future__ import annotations

from pathlib import Path

from observatory.report.index import render_index, scenario_slug
from observatory.report.load import load_index_rows, load_report_input
from observatory.report.model import IndexRow, ReportInput, RunSummary
from observatory.report.render import render_run_html, render_run_report, run_dir

REPORTS_SUBDIR = "reports"


def reports_root(data_dir: Path) -> Path:
    """Where reports live by default: <data_dir>/reports (the service serves this tree)."""
    return data_dir / REPORTS_SUBDIR


__all__ = [
    "IndexRow",
    "ReportInput",
    "RunSummary",
    "load_index_rows",
    "load_report_input",
    "render_index",
    "render_run_html",
    "render_run_report",
    "reports_root",
    "run_dir",
    "scenario_slug",
]
