"""Ratio statistics over windows and their circular block bootstrap.

Every compared metric is written as per-window numerators and denominators whose
statistic is ``sum(num) / sum(den)``: error rate (failures / requests), throughput
(requests / seconds), late rate, and typical latency (mean of log percentiles over
windows, i.e. a geometric mean). That makes one resample cost ``k`` block sums
instead of ``n`` values, so a 24-hour run (8,640 windows) bootstraps in
milliseconds. Windows are autocorrelated (a slow GC cycle, a warming cache), so
whole blocks of consecutive windows are resampled, wrapping around the end
(circular block bootstrap, Politis & Romano 1992) so every window is equally likely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]

RESAMPLES = 2000
MAX_RHO = 0.9  # beyond this a run is one long trend: blocks would be the whole run


@dataclass(frozen=True)
class Sample:
    """Per-window numerators and denominators of one metric in one run (or part of one)."""

    num: Floats
    den: Floats
    log: bool = False  # num holds logs: the value is exp(statistic)
    scale: float = 1.0  # display factor (100 turns a rate into percent)

    @property
    def n(self) -> int:
        return int(self.num.size)

    def statistic(self) -> float:
        total = float(self.den.sum())
        return float(self.num.sum()) / total if total > 0 else math.nan

    def value(self) -> float:
        """The statistic in display units."""
        return self.to_value(self.statistic())

    def to_value(self, statistic: float) -> float:
        return (math.exp(statistic) if self.log else statistic) * self.scale

    def per_window(self) -> Floats:
        """One value per window with a positive denominator (for rank tests)."""
        keep = self.den > 0
        return self.num[keep] / self.den[keep]


def lag1_autocorrelation(values: Floats) -> float:
    """Lag-1 autocorrelation, 0 for series too short or constant."""
    if values.size < 3:
        return 0.0
    centred = values - values.mean()
    denom = float(np.dot(centred, centred))
    if denom <= 0:
        return 0.0
    return float(np.dot(centred[:-1], centred[1:]) / denom)


def block_length(values: Floats) -> int:
    """Block length: the larger of n^(1/3) and the AR(1) decorrelation time.

    n^(1/3) is the rate-optimal order for variance estimation (Hall, Horowitz &
    Jing 1995); (1 + rho) / (1 - rho) is the integrated autocorrelation time of an
    AR(1) process, so strongly correlated runs get blocks long enough to carry
    their dependence. Capped at half the series so there are at least two blocks.
    """
    n = values.size
    if n < 2:
        return 1
    rho = min(max(lag1_autocorrelation(values), 0.0), MAX_RHO)
    length = max(math.ceil(n ** (1 / 3)), math.ceil((1 + rho) / (1 - rho)))
    return int(max(1, min(length, n // 2)))


def _block_sums(values: Floats, length: int) -> Floats:
    """Sum of every circular block of ``length`` consecutive values (n blocks)."""
    n = values.size
    extended = np.concatenate([values, values[: length - 1]])
    cumulative = np.concatenate([[0.0], np.cumsum(extended)])
    sums: Floats = cumulative[length : length + n] - cumulative[:n]
    return sums


def resample(sample: Sample, rng: np.random.Generator, resamples: int = RESAMPLES) -> Floats:
    """``resamples`` bootstrap replicates of the sample's statistic (not yet in display units)."""
    n = sample.n
    if n == 0:
        return np.full(resamples, math.nan)
    length = block_length(sample.per_window())
    blocks = math.ceil(n / length)
    starts = rng.integers(0, n, size=(resamples, blocks))
    num = _block_sums(sample.num, length)[starts].sum(axis=1)
    den = _block_sums(sample.den, length)[starts].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        replicates: Floats = np.where(den > 0, num / np.where(den > 0, den, 1.0), math.nan)
    return replicates


def to_values(sample: Sample, statistics: Floats) -> Floats:
    """Replicates in display units."""
    values = np.exp(statistics) if sample.log else statistics
    scaled: Floats = values * sample.scale
    return scaled


@dataclass(frozen=True, slots=True)
class DeltaInterval:
    """Percentile bootstrap interval of candidate - baseline (absolute) or ratio - 1."""

    low: float
    high: float


def delta_interval(
    base: Sample,
    cand: Sample,
    rng: np.random.Generator,
    *,
    relative: bool,
    level: float = 0.95,
) -> DeltaInterval:
    """Two-sample bootstrap interval: each run resampled on its own blocks."""
    b = to_values(base, resample(base, rng))
    c = to_values(cand, resample(cand, rng))
    with np.errstate(invalid="ignore", divide="ignore"):
        deltas = c / b - 1.0 if relative else c - b
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size < 10:
        return DeltaInterval(math.nan, math.nan)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return DeltaInterval(float(low), float(high))
