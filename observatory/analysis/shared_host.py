"""Windows measured while other processes took the host's CPU (see observatory.neighbours).

A ``neighbours`` resource sample at offset ``t`` reports the CPU the rest of the host used
over the interval since the previous one. A window ``[w, w + length_s)`` counts as shared
when any interval overlapping it saw neighbours above the limit: a burst of a few seconds
sets aside the one or two windows it touched, and nothing else.
"""

from __future__ import annotations

import numpy as np

from observatory.analysis.rundata import RunData
from observatory.neighbours import NEIGHBOURS


def shared_windows(data: RunData, limit_cores: float | None) -> frozenset[float]:
    """Window starts during which neighbours used more than ``limit_cores`` cores."""
    if limit_cores is None:
        return frozenset()
    res = data.resources
    samples = res[(res["role"] == NEIGHBOURS) & res["cpu_percent"].notna()].sort_values("t")
    if samples.empty or data.windows.empty:
        return frozenset()
    ends = samples["t"].to_numpy(dtype=float)
    first = float(np.median(np.diff(ends))) if len(ends) > 1 else data.window_s
    starts = np.concatenate(([ends[0] - first], ends[:-1]))
    busy = samples["cpu_percent"].to_numpy(dtype=float) > limit_cores * 100.0
    lengths = data.windows.groupby("t")["length_s"].max()  # compacted windows are longer
    windows, length = lengths.index.to_numpy(dtype=float), lengths.to_numpy(dtype=float)
    found: set[float] = set()
    for since, until in zip(starts[busy], ends[busy], strict=True):
        overlaps = (windows < until) & (windows + length > since)
        found.update(float(w) for w in windows[overlaps])
    return frozenset(found)


def set_aside(data: RunData, limit_cores: float | None) -> RunData:
    """``data`` with its shared windows marked, so that every view leaves them out."""
    return data.with_shared(shared_windows(data, limit_cores))
