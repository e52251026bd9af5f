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

from observatory.analysis.bootstrap import Floats, Sample
from observatory.analysis.comparison import Evidence, compare
from observatory.analysis.metrics import OVERALL, RunView, in_phases, latency_rows
from observatory.analysis.resources import GATEWAY
from observatory.analysis.thresholds import Limits

LOG_FLOOR_BYTES = 10.0
# (metric and threshold key, unit, resource column)
METRICS = (("log_bytes_per_request", "B", "log_bytes"), ("cpu_per_request", "ms", "cpu_percent"))


def per_request_evidence(cand: RunView, base: RunView, limits: Limits) -> list[Evidence]:
    """Log bytes and CPU per request, candidate against baseline (when both measured them)."""
    evidence = []
    for metric, unit, column in METRICS:
        b, c = cost_sample(base, column), cost_sample(cand, column)
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
    """Per resource-sample interval: cost (bytes, or CPU ms) over requests completed."""
    t, cost = _costs(run, column)
    requests = _requests_between(run, t)
    keep = np.isfinite(cost[1:]) & (requests > 0) & ~in_phases(run.data, t[1:])
    keep &= t[1:] >= run.data.warmup_s
    num, den = cost[1:][keep], requests[keep]
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


def _requests_between(run: RunView, t: Floats) -> Floats:
    """Requests whose window midpoint falls in each interval (t[i-1], t[i]]."""
    if t.size < 2:
        return np.zeros(0, dtype=float)
    rows = latency_rows(run, OVERALL)
    middle = rows["t"].to_numpy(dtype=float) + rows["length_s"].to_numpy(dtype=float) / 2
    counts = rows["count"].to_numpy(dtype=float)  # failures cost the gateway too
    slot = np.searchsorted(t, middle, side="left")
    inside = (slot > 0) & (slot < t.size)
    totals = np.bincount(slot[inside] - 1, weights=counts[inside], minlength=t.size - 1)
    return totals[: t.size - 1].astype(float)
