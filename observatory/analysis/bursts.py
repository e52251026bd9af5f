"""Error bursts per request name, and their period when they repeat.

A burst is a run of windows with failures, tolerant of one clean window inside it (a
burst of 25 s on a 10 s grid often leaves a window between two halves). Three or more
bursts whose starts are evenly spaced (every gap within a window or a quarter of the
median gap) have a period: the lifecycle of something inside the gateway (a cache TTL, a
pool recycled on a timer) rather than load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from observatory.analysis.rundata import RunData
from observatory.domain import Series
from observatory.durations import format_duration

MIN_PERIODIC = 3  # bursts needed before a period means anything
PERIOD_JITTER = 0.25  # share of the median gap each gap may differ by (or one window)


@dataclass(frozen=True)
class Burst:
    """Failures of one request name from ``start_s`` until ``end_s`` (run offsets)."""

    name: str
    start_s: float
    end_s: float
    failures: int
    requests: int  # of that name in the burst's windows

    @property
    def share(self) -> float:
        """The share of the name's requests in the burst that failed."""
        return self.failures / self.requests if self.requests else 0.0

    @property
    def length_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class BurstSeries:
    """The bursts of one request name, and their period if they repeat regularly."""

    name: str
    bursts: tuple[Burst, ...]
    period_s: float | None

    def describe(self) -> str:
        """'in 3 bursts of ~30s every ~1m5s, first at 1m5s' (or one burst's span)."""
        first = self.bursts[0]
        if len(self.bursts) == 1:
            return f"in 1 burst of {_span(first.length_s)} at {format_duration(first.start_s)}"
        length = float(np.median([b.length_s for b in self.bursts]))
        every = "" if self.period_s is None else f" every ~{_span(self.period_s)}"
        return (
            f"in {len(self.bursts)} bursts of ~{_span(length)}{every}, "
            f"first at {format_duration(first.start_s)}"
        )


def _span(seconds: float) -> str:
    return format_duration(round(seconds))


def find_bursts(data: RunData) -> tuple[BurstSeries, ...]:
    """Every request name with failures after warm-up, over all its steady windows."""
    windows = data.windows
    rows = windows[(windows["series"] == Series.LATENCY) & (windows["t"] >= data.warmup_s)]
    out = []
    for name, group in rows.groupby("name", sort=True):
        per_t = group.groupby("t", sort=True)[["failures", "count", "length_s"]].agg(
            {"failures": "sum", "count": "sum", "length_s": "max"}
        )
        bursts = _bursts(str(name), per_t, data.window_s)
        if bursts:
            out.append(BurstSeries(str(name), bursts, period(bursts, data.window_s)))
    return tuple(out)


def _bursts(name: str, per_t: pd.DataFrame, window_s: float) -> tuple[Burst, ...]:
    t = per_t.index.to_numpy(dtype=float)
    mask = per_t["failures"].to_numpy() > 0
    failing, lengths = t[mask], per_t["length_s"].to_numpy(dtype=float)[mask]
    if failing.size == 0:
        return ()
    # A new burst starts where more than one clean window (of the failing window's length:
    # compacted windows are longer) separates two failing ones.
    gaps = failing[1:] - (failing[:-1] + lengths[:-1])
    breaks = np.flatnonzero(gaps > np.maximum(lengths[:-1], window_s) + 1e-9) + 1
    out = []
    for part in np.split(failing, breaks):
        start, last = float(part[0]), float(part[-1])
        inside = per_t[(t >= start) & (t <= last)]
        out.append(
            Burst(
                name=name,
                start_s=start,
                end_s=last + float(inside["length_s"].iloc[-1]),
                failures=int(inside["failures"].sum()),
                requests=int(inside["count"].sum()),
            )
        )
    return tuple(out)


def period(bursts: tuple[Burst, ...], window_s: float) -> float | None:
    """The median gap between burst starts when at least three bursts are evenly spaced."""
    if len(bursts) < MIN_PERIODIC:
        return None
    gaps = np.diff([b.start_s for b in bursts])
    typical = float(np.median(gaps))
    tolerance = max(window_s, PERIOD_JITTER * typical)
    if typical <= 0 or np.any(np.abs(gaps - typical) > tolerance):
        return None
    return typical
