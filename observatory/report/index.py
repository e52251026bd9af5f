"""The static index of all runs and one release-history page per scenario."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from observatory.domain import Channel, RunStatus
from observatory.report.assets import publish_static, script_json, write_atomic
from observatory.report.downsample import compact
from observatory.report.findings import number
from observatory.report.format import day
from observatory.report.model import IndexRow
from observatory.report.render import environment, run_dir

HISTORY_DIR = "history"


@dataclass(frozen=True, slots=True)
class Release:
    """One build's representative run of a scenario: its latest completed one."""

    row: IndexRow
    runs: int

    @property
    def stable(self) -> bool:
        return self.row.channel == Channel.STABLE


def scenario_slug(scenario: str) -> str:
    """A file name for any scenario name; the hash keeps distinct names distinct."""
    readable = re.sub(r"[^a-z0-9]+", "-", scenario.lower()).strip("-")[:60] or "scenario"
    digest = hashlib.sha256(scenario.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


def render_index(rows: Sequence[IndexRow], out_dir: Path) -> Path:
    """Write out_dir/index.html and out_dir/history/<scenario>.html; return the index path."""
    publish_static(out_dir)
    scenarios = sorted({row.scenario for row in rows})
    for scenario in scenarios:
        _render_history(scenario, [r for r in rows if r.scenario == scenario], out_dir)
    page = out_dir / "index.html"
    html = (
        environment()
        .get_template("index.html.j2")
        .render(
            rows=[_index_view(row, out_dir) for row in rows],
            filters=_filter_values(rows),
            histories=[(s, f"{HISTORY_DIR}/{scenario_slug(s)}.html") for s in scenarios],
            static="static",
            index="index.html",
            generated_at=datetime.now(UTC),
        )
    )
    write_atomic(page, html)
    return page


def _index_view(row: IndexRow, out_dir: Path) -> dict[str, Any]:
    has_page = (run_dir(out_dir, row.run_id) / "index.html").is_file()
    return {
        "row": row,
        "href": f"runs/{row.run_id}/index.html" if has_page else "",
        "date": day(row.started_at),
        "verdict": row.verdict or "",
        "stable": row.channel == Channel.STABLE,
        "history": f"{HISTORY_DIR}/{scenario_slug(row.scenario)}.html",
        **_metrics(row),
    }


def _metrics(row: IndexRow) -> dict[str, str]:
    s = row.summary
    rate = None if s.error_rate is None else 100.0 * s.error_rate
    return {
        "p99": number(s.p99_ms, "ms"),
        "error_rate": number(rate, "%"),
        "memory_slope": number(s.memory_slope_mb_h, "MB/h"),
    }


def _filter_values(rows: Sequence[IndexRow]) -> dict[str, list[str]]:
    return {
        "gateway": sorted({r.gateway for r in rows}),
        "build": sorted({r.build for r in rows}),
        "scenario": sorted({r.scenario for r in rows}),
        "verdict": sorted({r.verdict or "" for r in rows} - {""}),
    }


def releases(rows: Sequence[IndexRow]) -> list[Release]:
    """Per build, its latest completed run; oldest release first (by when it ran)."""
    done = [r for r in rows if r.status == RunStatus.DONE and r.started_at is not None]
    latest: dict[str, IndexRow] = {}
    counts: dict[str, int] = {}
    for row in done:
        counts[row.build] = counts.get(row.build, 0) + 1
        current = latest.get(row.build)
        if current is None or _started(row) > _started(current):
            latest[row.build] = row
    ordered = sorted(latest.values(), key=_started)
    return [Release(row, counts[row.build]) for row in ordered]


def _started(row: IndexRow) -> datetime:
    return row.started_at or datetime.min.replace(tzinfo=UTC)


def _render_history(scenario: str, rows: Sequence[IndexRow], out_dir: Path) -> None:
    items = releases(rows)
    html = (
        environment()
        .get_template("history.html.j2")
        .render(
            scenario=scenario,
            releases=[
                {"release": r, "date": day(r.row.started_at), **_metrics(r.row)} for r in items
            ],
            chart_json=script_json({"charts": _history_charts(items)}),
            static="../static",
            index="../index.html",
            generated_at=datetime.now(UTC),
        )
    )
    write_atomic(out_dir / HISTORY_DIR / f"{scenario_slug(scenario)}.html", html)


def _history_charts(items: Sequence[Release]) -> list[dict[str, Any]]:
    labels = [f"{r.row.version}{' ★' if r.stable else ''}" for r in items]
    x = list(range(len(items)))
    sums = [r.row.summary for r in items]
    return [
        _history_chart("history-p99", "p99 latency", "ms", x, labels, [s.p99_ms for s in sums]),
        _history_chart(
            "history-errors", "Error rate", "%", x, labels, [_pct(s.error_rate) for s in sums]
        ),
        _history_chart(
            "history-memory", "Memory slope", "MB/h", x, labels, [s.memory_slope_mb_h for s in sums]
        ),
    ]


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def _history_chart(
    chart_id: str,
    title: str,
    unit: str,
    x: list[int],
    labels: list[str],
    values: list[float | None],
) -> dict[str, Any]:
    floats = np.asarray([np.nan if v is None else v for v in values], dtype=float)
    line = {"label": title, "values": compact(floats), "color": "#1f77b4", "dash": False}
    return {
        "id": chart_id,
        "title": title,
        "unit": unit,
        "x": x,
        "labels": labels,
        "lines": [{**line, "baseline": False}],
        "marks": [],
        "bands": [],
        "note": "",
    }
