"""What each request costs the gateway: log bytes and CPU time per request.

Every gateway resource sample covers the interval since the previous one: the bytes the
gateway wrote to its output and the CPU it used there. The requests the load generator
completed in the same interval (its steady latency windows, by their midpoint) are the
denominator, so the statistic is the run's total cost over its total requests; samples
in warm-up, fault phases or without requests are left out. Log bytes count from a floor
of ``LOG_FLOOR_BYTES`` per request, so a rise from a silent baseline is still a ratio.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from observatory.analysis.bootstrap import Floats, Sample
from observatory.analysis.comparison import Evidence, compare
from observatory.analysis.metrics import OVERALL, RunView, in_phases, latency_rows
from observatory.analysis.resources import GATEWAY
from observatory.analysis.thresholds import Limits
from observatory.domain import Series

LOG_FLOOR_BYTES = 10.0
# (metric and threshold key, unit, resource column)
METRICS = (("log_bytes_per_request", "B", "log_bytes"), ("cpu_per_request", "ms", "cpu_percent"))


def per_request_evidence(
    cand: RunView, base: RunView, limits: Limits, every: tuple[RunView, RunView] | None = None
) -> list[Evidence]:
    """Log bytes and CPU per request, candidate against baseline (when both measured them).

    ``every``: (candidate, baseline) with the windows set aside kept: a busy host slows a
    gateway's CPU per request, it does not make the gateway log more, so log bytes use them.
    """
    evidence = []
    for metric, unit, column in METRICS:
        views = every if every is not None and column == "log_bytes" else (cand, base)
        b, c = cost_sample(views[1], column), cost_sample(views[0], column)
        if b.n == 0 or c.n == 0:
            continue
        evidence.append(
            compare(
                metric,
                OVERALL,
                b,
                c,
                key=metric,
                unit=unit,
                min_windows=limits.min_windows,
                detail="gateway process tree, per request",
            )
        )
    return evidence


def cost_sample(run: RunView, column: str) -> Sample:
    """Per bucket of time: cost (bytes, or CPU ms) over the requests completed in it.

    Buckets are as long as a window or a sampling interval, whichever is longer, so every
    bucket holds both resource samples and windows.
    """
    t, cost = _costs(run, column)
    if t.size < 2:
        return Sample(num=np.zeros(0), den=np.zeros(0))
    width = max(run.data.window_s, float(np.median(np.diff(t))))
    middle = (t[1:] + t[:-1]) / 2
    usable = np.isfinite(cost[1:]) & (middle >= run.data.warmup_s)
    usable &= ~in_phases(run.data, middle)
    spent = _by_bucket(middle[usable], cost[1:][usable], width)
    served = _requests(latency_rows(run, OVERALL), width)
    windows = run.data.windows
    every = _requests(windows[windows["series"] == Series.LATENCY], width)
    # a bucket with a window set aside (disturbed, in a phase) would bill its cost to fewer
    complete = {b for b, n in served.items() if n > 0 and every.get(b) == n}
    buckets = sorted(set(spent) & complete)
    num = np.array([spent[b] for b in buckets], dtype=float)
    den = np.array([served[b] for b in buckets], dtype=float)
    if column == "log_bytes":
        num = num + LOG_FLOOR_BYTES * den
    return Sample(num=num, den=den)


def _costs(run: RunView, column: str) -> tuple[Floats, Floats]:
    """(sample times, cost in the interval ending at each): bytes, or CPU milliseconds."""
    res = run.data.resources
    if column not in res.columns:  # log_bytes is optional: runs stored before it was counted
        return np.zeros(0, dtype=float), np.zeros(0, dtype=float)
    rows = res[res["role"] == GATEWAY].sort_values("t")
    t = rows["t"].to_numpy(dtype=float)
    values = rows[column].to_numpy(dtype=float)
    if column == "cpu_percent" and t.size:
        values = values / 100.0 * np.diff(t, prepend=t[0]) * 1000.0
    return t, values


def _requests(rows: pd.DataFrame, width: float) -> dict[int, float]:
    """Requests per bucket of these latency windows, by each window's midpoint."""
    middle = rows["t"].to_numpy(dtype=float) + rows["length_s"].to_numpy(dtype=float) / 2
    counts = rows["count"].to_numpy(dtype=float)  # failures cost the gateway too
    return _by_bucket(middle, counts, width)


def _by_bucket(t: Floats, values: Floats, width: float) -> dict[int, float]:
    out: dict[int, float] = {}
    for bucket, value in zip((t // width).astype(int).tolist(), values.tolist(), strict=True):
        out[bucket] = out.get(bucket, 0.0) + value
    return out
