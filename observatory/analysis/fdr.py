"""False discovery rate control across a family of findings (Benjamini-Hochberg)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """BH-adjusted p-values (q-values), in input order; NaN stays NaN and is not counted.

    Rejecting every hypothesis whose adjusted value is <= q keeps the expected share
    of false discoveries among the flagged findings at q (Benjamini & Hochberg 1995,
    valid under independence and positive dependence, which related metrics of one
    run such as p95 and p99 have).
    """
    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(values.shape, math.nan)
    finite = np.isfinite(values)
    if finite.any():
        clipped = np.clip(values[finite], 0.0, 1.0)
        adjusted[finite] = stats.false_discovery_control(clipped, method="bh")
    return [float(v) for v in adjusted]
