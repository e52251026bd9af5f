"""Known regressions injected into a run (synthetic or real), for detection-power scoring.

Each function returns a new RunData; the input is never modified.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from observatory.analysis.bootstrap import Floats
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
    windows = run.windows
    rows = (
        (windows["series"] == Series.LATENCY) & (windows["t"] >= from_s) & (windows["t"] < until_s)
    )
    if names is not None:
        rows &= windows["name"].isin(list(names))
    ok = (windows.loc[rows, "count"] - windows.loc[rows, "failures"]).clip(lower=0)
    extra = pd.Series(rng.binomial(ok.to_numpy(dtype=np.int64), rate), index=ok.index)
    return _fail(run, extra, category, message)


def error_bursts(
    run: RunData,
    name: str,
    *,
    burst_s: float = 25.0,
    every_s: float = 60.0,
    share: float = 0.5,
    first_s: float | None = None,
    seed: int = 0,
    category: str = "http_500",
    message: str = "Cannot send a request, as the client has been closed",
) -> RunData:
    """``share`` of ``name``'s requests fail in bursts of ``burst_s`` every ``every_s``.

    The shape of a client cache that closes in-use clients when its TTL expires: from
    ``first_s`` (default: the end of warm-up) to the end of the run.
    """
    start = run.warmup_s if first_s is None else first_s
    starts = np.arange(start, run.duration_s, every_s)
    return _burst_failures(run, name, starts, burst_s, share, seed, category, message)


def error_burst(
    run: RunData,
    name: str,
    failures: int,
    *,
    at_s: float,
    length_s: float = 24.0,
    category: str = "http_500",
    message: str = "Cannot send a request, as the client has been closed",
) -> RunData:
    """Exactly ``failures`` of ``name``'s requests fail within ``[at_s, at_s + length_s)``."""
    windows = run.windows
    rows = _overlap(windows, name, np.array([at_s]), length_s)
    weights = rows * (windows["count"] - windows["failures"]).clip(lower=0)
    extra = pd.Series(0, index=windows.index, dtype=np.int64)
    left = failures
    for index in weights[weights > 0].sort_values(ascending=False).index:  # fullest first
        take = min(left, math.ceil(failures * weights[index] / weights.sum()), int(weights[index]))
        extra[index], left = take, left - take
    return _fail(run, extra[extra > 0], category, message)


def _overlap(windows: pd.DataFrame, name: str, starts: Floats, length_s: float) -> pd.Series:
    """Per window of ``name``'s latency series: the share of it inside any burst."""
    ends = windows["t"] + windows["length_s"]
    share = pd.Series(0.0, index=windows.index)
    for begin in starts:
        inside = (np.minimum(ends, begin + length_s) - np.maximum(windows["t"], begin)).clip(
            lower=0
        )
        share += inside / windows["length_s"]
    mine = (windows["series"] == Series.LATENCY) & (windows["name"] == name)
    return share.where(mine, 0.0).clip(upper=1.0)


def _burst_failures(
    run: RunData,
    name: str,
    starts: Floats,
    length_s: float,
    share: float,
    seed: int,
    category: str,
    message: str,
) -> RunData:
    rng = np.random.default_rng(seed)
    windows = run.windows
    p = _overlap(windows, name, starts, length_s) * share
    ok = (windows["count"] - windows["failures"]).clip(lower=0).to_numpy(dtype=np.int64)
    extra = pd.Series(rng.binomial(ok, p.to_numpy()), index=windows.index)
    return _fail(run, extra[extra > 0], category, message)


def _fail(run: RunData, extra: pd.Series, category: str, message: str) -> RunData:
    """Add ``extra`` failures to the windows at its index, and the matching error rows.

    ``message`` fills the errors frame's ``message`` column where the frame has one.
    """
    windows = run.windows.copy()
    windows.loc[extra.index, "failures"] = windows.loc[extra.index, "failures"] + extra
    added = pd.DataFrame(
        {
            "t": windows.loc[extra.index, "t"].to_numpy(),
            "name": windows.loc[extra.index, "name"].to_numpy(),
            "category": category,
            "count": extra.to_numpy(dtype=np.int64),
        }
    )
    if "message" in run.errors.columns:
        added["message"] = message
    added = added[added["count"] > 0]
    errors = pd.concat([run.errors, added], ignore_index=True)
    return run.with_frames(windows=windows, errors=errors.astype(run.errors.dtypes.to_dict()))


def add_leak(run: RunData, mb_per_h: float, *, from_s: float = 0.0) -> RunData:
    """Gateway memory grows by ``mb_per_h`` from ``from_s`` on (RSS and USS alike)."""
    resources = run.resources.copy()
    rows = resources["role"] == "gateway"
    growth = (resources.loc[rows, "t"] - from_s).clip(lower=0) / 3600.0 * mb_per_h
    for column in ("rss_mb", "uss_mb"):
        resources.loc[rows, column] = resources.loc[rows, column] + growth
    return run.with_frames(resources=resources)


def step_memory(run: RunData, fraction: float, *, from_s: float = 0.0) -> RunData:
    """Gateway memory settles ``fraction`` higher (of its own mean after warm-up), no slope."""
    resources = run.resources.copy()
    rows = resources["role"] == "gateway"
    steady = rows & (resources["t"] >= run.warmup_s)
    later = rows & (resources["t"] >= from_s)
    for column in ("rss_mb", "uss_mb"):
        level = float(resources.loc[steady, column].mean())
        resources.loc[later, column] = resources.loc[later, column] + fraction * level
    return run.with_frames(resources=resources)


def saturate(run: RunData, fraction: float, *, seed: int = 0) -> RunData:
    """Flag a random ``fraction`` of windows as measured by a saturated load generator."""
    rng = np.random.default_rng(seed)
    windows = run.windows.copy()
    starts = windows["t"].unique()
    chosen = rng.choice(starts, size=round(fraction * starts.size), replace=False)
    windows["saturated"] = windows["t"].isin(chosen)
    return run.with_frames(windows=windows)


def busy_share(
    run: RunData, share: float, *, seed: int = 0, block_s: float = 30.0, every_s: float = 5.0
) -> RunData:
    """Neighbours busy (1.5 cores) in a random ``share`` of the run's blocks of ``block_s``."""
    rng = np.random.default_rng(seed)
    t = np.arange(every_s, run.duration_s + every_s, every_s)
    block = ((t - every_s) // block_s).astype(int)
    blocks = int(block.max()) + 1
    chosen = rng.choice(blocks, size=round(share * blocks), replace=False)
    busy = np.isin(block, chosen)
    return _neighbours(run, t, np.where(busy, 150.0, 2.0))


def busy_neighbours(
    run: RunData, cores: float, *, from_s: float, until_s: float, every_s: float = 5.0
) -> RunData:
    """Add ``neighbours`` samples: ``cores`` of other work in ``[from_s, until_s)``, idle else."""
    t = np.arange(every_s, run.duration_s + every_s, every_s)
    busy = (t > from_s) & (t - every_s < until_s)
    return _neighbours(run, t, np.where(busy, cores * 100.0, 2.0))


def _neighbours(run: RunData, t: Floats, cpu_percent: Floats) -> RunData:
    samples = pd.DataFrame({"t": t, "role": NEIGHBOURS, "cpu_percent": cpu_percent})
    resources = pd.concat([run.resources, samples], ignore_index=True)
    return run.with_frames(resources=resources.astype(run.resources.dtypes.to_dict()))
