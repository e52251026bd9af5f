"""The failure timeline at the top of a report: when each request name failed, and how.

One strip per request name that failed: failed requests per window across the whole run
(an inline SVG, no script), its share of that name's requests, first and last failure, and
its most frequent messages. ``bursts`` adds the analysis' burst description per name
("3 bursts of ~25 s, every ~65 s") where the analysis provides one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from observatory.analysis.labels import request_name
from observatory.analysis.rundata import RunData
from observatory.domain import Series
from observatory.durations import format_duration
from observatory.report.model import ErrorGroup
from observatory.report.redact import redact_text

WIDTH = 600.0
HEIGHT = 28.0
TOP_MESSAGES = 2


@dataclass(frozen=True, slots=True)
class Strip:
    """One request name's failures over the run; every field ready to show."""

    name: str
    failures: int
    requests: int
    share: str
    first: str
    last: str
    bursts: str
    bars: tuple[tuple[float, float, float], ...]  # (x, width, height) in SVG units
    warmup_x: float
    messages: tuple[str, ...]  # "http_500 x120: upstream returned 500"


def failure_strips(
    data: RunData, groups: Sequence[ErrorGroup], bursts: Mapping[str, str] | None = None
) -> list[Strip]:
    """Strips of every request name with a failed request, most failures first."""
    frame = data.windows
    if frame.empty:
        return []
    latency = frame.loc[frame["series"] == Series.LATENCY]
    strips = [
        _strip(str(name), rows, data, groups, (bursts or {}).get(str(name), ""))
        for name, rows in latency.groupby("name", sort=True)
        if int(rows["failures"].sum()) > 0
    ]
    return sorted(strips, key=lambda s: -s.failures)


def _strip(
    name: str, rows: pd.DataFrame, data: RunData, groups: Sequence[ErrorGroup], bursts: str
) -> Strip:
    failures, requests = int(rows["failures"].sum()), int(rows["count"].sum())
    failing = rows.loc[rows["failures"] > 0, "t"]
    return Strip(
        name=request_name(name),
        failures=failures,
        requests=requests,
        share=f"{100.0 * failures / requests:.3g} %" if requests else "",
        first=_at(float(failing.min())),
        last=_at(float(failing.max()) + data.window_s),
        bursts=bursts,
        bars=_bars(rows, data),
        warmup_x=_x(data.warmup_s, data),
        messages=_messages(name, groups),
    )


def _at(t: float) -> str:
    """Seconds into the run, whole: "0s", "1m5s"."""
    return format_duration(float(round(t))) if t >= 1 else "0s"


def _x(t: float, data: RunData) -> float:
    span = max(data.duration_s, data.window_s)
    return round(WIDTH * min(max(t, 0.0), span) / span, 1)


def _bars(rows: pd.DataFrame, data: RunData) -> tuple[tuple[float, float, float], ...]:
    per_window = rows.groupby("t")["failures"].sum()
    peak = float(per_window.max()) or 1.0
    width = max(_x(data.window_s, data), 1.0)
    return tuple(
        (_x(float(t), data), width, round(max(2.0, HEIGHT * float(n) / peak), 1))
        for t, n in zip(per_window.index.to_numpy(float), per_window.to_numpy(float), strict=True)
        if n > 0
    )


def _messages(name: str, groups: Sequence[ErrorGroup]) -> tuple[str, ...]:
    mine = sorted((g for g in groups if g.name == name), key=lambda g: -g.count)
    lines = []
    for group in mine[:TOP_MESSAGES]:
        sample = redact_text(group.messages[0]) if group.messages else ""
        head = f"{group.category} \N{MULTIPLICATION SIGN}{group.count}"
        lines.append(f"{head}: {sample}" if sample else head)
    return tuple(lines)
