"""Known regressions injected into a run (synthetic or real), for detection-power scoring.

Each function returns a new RunData; the input is never modified.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from observatory.analysis.rundata import RunData
from observatory.domain import Series
from observatory.neighbours import NEIGHBOURS

TAIL_COLUMNS = ("p99", "p999", "max")


def scale_latency(
    run: RunData,
    factor: float,
    *,
    columns: Sequence[str] = TAIL_COLUMNS,
    names: Sequence[str] | None = None,
    from_s: float = 0.0,
    until_s: float = math.inf,
) -> RunData:
    """Multiply latency percentiles (by default the tail: p99 and above) by ``factor``."""
    windows = run.windows.copy()
    rows = (
        (windows["series"] == Series.LATENCY) & (windows["t"] >= from_s) & (windows["t"] < until_s)
    )
    if names is not None:
        rows &= windows["name"].isin(list(names))
    for column in columns:
        windows.loc[rows, column] = windows.loc[rows, column] * factor
    return run.with_frames(windows=windows)


def add_errors(
    run: RunData,
    rate: float,
    *,
    from_s: float = 0.0,
    until_s: float = math.inf,
    seed: int = 0,
    category: str = "injected",
    message: str = "",
    names: Sequence[str] | None = None,
) -> RunData:
    """Turn a further ``rate`` of each window's successful requests into failures.

    ``message``: their failure signature ("" = unknown); ``names``: only these request names.
    """
    rng = np.random.default_rng(seed)
    windows = run.windows.copy()
    rows = (
        (windows["series"] == Series.LATENCY) & (windows["t"] >= from_s) & (windows["t"] < until_s)
    )
    if names is not None:
        rows &= windows["name"].isin(list(names))
    ok = (windows.loc[rows, "count"] - windows.loc[rows, "failures"]).clip(lower=0)
    extra = rng.binomial(ok.to_numpy(dtype=np.int64), rate)
    windows.loc[rows, "failures"] = windows.loc[rows, "failures"] + extra
    added = pd.DataFrame(
        {
            "t": windows.loc[rows, "t"].to_numpy(),
            "name": windows.loc[rows, "name"].to_numpy(),
            "category": category,
            "count": extra.astype(np.int64),
            "message": message,
        }
    )
    errors = pd.concat([run.errors, added[added["count"] > 0]], ignore_index=True)
    return run.with_frames(windows=windows, errors=errors.astype(run.errors.dtypes.to_dict()))


def add_leak(run: RunData, mb_per_h: float, *, from_s: float = 0.0) -> RunData:
    """Gateway memory grows by ``mb_per_h`` from ``from_s`` on (RSS and USS alike)."""
    resources = run.resources.copy()
    rows = resources["role"] == "gateway"
    growth = (resources.loc[rows, "t"] - from_s).clip(lower=0) / 3600.0 * mb_per_h
    for column in ("rss_mb", "uss_mb"):
        resources.loc[rows, column] = resources.loc[rows, column] + growth
    return run.with_frames(resources=resources)


def saturate(run: RunData, fraction: float, *, seed: int = 0) -> RunData:
    """Flag a random ``fraction`` of windows as measured by a saturated load generator."""
    rng = np.random.default_rng(seed)
    windows = run.windows.copy()
    starts = windows["t"].unique()
    chosen = rng.choice(starts, size=round(fraction * starts.size), replace=False)
    windows["saturated"] = windows["t"].isin(chosen)
    return run.with_frames(windows=windows)


def busy_neighbours(
    run: RunData, cores: float, *, from_s: float, until_s: float, every_s: float = 5.0
) -> RunData:
    """Add ``neighbours`` samples: ``cores`` of other work in ``[from_s, until_s)``, idle else."""
    t = np.arange(every_s, run.duration_s + every_s, every_s)
    busy = (t > from_s) & (t - every_s < until_s)
    samples = pd.DataFrame(
        {"t": t, "role": NEIGHBOURS, "cpu_percent": np.where(busy, cores * 100.0, 2.0)}
    )
    resources = pd.concat([run.resources, samples], ignore_index=True)
    return run.with_frames(resources=resources.astype(run.resources.dtypes.to_dict()))
