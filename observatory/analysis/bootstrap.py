"""Ratio statistics over windows and their circular block bootstrap.

Every compared metric is written as per-window numerators and denominators whose
statistic is ``sum(num) / sum(den)``: error rate (failures / requests), throughput
(requests / seconds), late rate, and typical latency (mean of log percentiles over
windows, i.e. a geometric mean). That makes one resample cost ``k`` block sums
instead of ``n`` values, so a 24-hour run (8,640 windows) bootstraps in
milliseconds. Windows are autocorrelated (a slow GC cycle, a warming cache), so
whole blocks of consecutive windows are resampled, wrapping around the end
(circular block bootstrap, Politis & Romano 1992) so every window is equally likely.

Runs measured side by side (same clock, same window grid) are compared window by window:
their samples are restricted to the windows both measured (``paired``), and one set of
block starts resamples both, so whatever the host did to both at once cancels out of the
interval instead of widening it.
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
    t: Floats | None = None  # window starts on the wall clock (epoch s); None: unknown

    def take(self, index: NDArray[np.intp]) -> Sample:
        """The windows at ``index``, in that order."""
        t = None if self.t is None else self.t[index]
        return Sample(self.num[index], self.den[index], self.log, self.scale, t)

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


MIN_PAIRED_SHARE = 0.5  # fewer common windows than this share: not measured together


def paired(base: Sample, cand: Sample) -> tuple[Sample, Sample] | None:
    """Both samples cut to the windows they measured at the same moments, aligned.

    None when the two were not measured together: no wall-clock times, or fewer common
    windows than half of the smaller sample (a window either run set aside is dropped
    from both).
    """
    if base.t is None or cand.t is None:
        return None
    _, b_index, c_index = np.intersect1d(
        np.round(base.t, 3), np.round(cand.t, 3), assume_unique=True, return_indices=True
    )
    if b_index.size < 3 or b_index.size < MIN_PAIRED_SHARE * min(base.n, cand.n):
        return None
    keep = (base.den[b_index] > 0) & (cand.den[c_index] > 0)
    return base.take(b_index[keep]), cand.take(c_index[keep])


def window_differences(base: Sample, cand: Sample) -> Floats:
    """Per-window candidate - baseline values of two paired samples."""
    diff: Floats = cand.num / cand.den - base.num / base.den
    return diff


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
    return _replicates(sample, length, _starts(rng, n, length, resamples))


def _starts(rng: np.random.Generator, n: int, length: int, resamples: int) -> NDArray[np.int64]:
    starts: NDArray[np.int64] = rng.integers(0, n, size=(resamples, math.ceil(n / length)))
    return starts


def _replicates(sample: Sample, length: int, starts: NDArray[np.int64]) -> Floats:
    """The statistic of each row of block ``starts``."""
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
    """Percentile bootstrap interval of candidate - baseline (absolute) or ratio - 1.

    ``p_value``: two-sided bootstrap p-value of "no change", twice the smaller share of
    replicates on either side of zero (ties count half), at least 1 / replicates.
    """

    low: float
    high: float
    p_value: float = math.nan


def delta_interval(
    base: Sample,
    cand: Sample,
    rng: np.random.Generator,
    *,
    relative: bool,
    level: float = 0.95,
) -> DeltaInterval:
    """Bootstrap interval: each run resampled on its own blocks, or paired runs on shared ones."""
    pair = paired(base, cand)
    if pair is None:
        b = to_values(base, resample(base, rng))
        c = to_values(cand, resample(cand, rng))
    else:
        b, c = _paired_replicates(*pair, rng)
    with np.errstate(invalid="ignore", divide="ignore"):
        deltas = c / b - 1.0 if relative else c - b
    deltas = deltas[np.isfinite(deltas)]
    if deltas.size < 10:
        return DeltaInterval(math.nan, math.nan)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(deltas, [tail, 100 - tail])
    return DeltaInterval(float(low), float(high), _sign_p_value(deltas))


def _sign_p_value(deltas: Floats) -> float:
    ties = float(np.mean(deltas == 0)) / 2
    below, above = float(np.mean(deltas < 0)) + ties, float(np.mean(deltas > 0)) + ties
    return min(1.0, max(2 * min(below, above), 1 / deltas.size))


def _paired_replicates(
    base: Sample, cand: Sample, rng: np.random.Generator
) -> tuple[Floats, Floats]:
    """Replicates of both paired samples (display units) drawn with the same block starts."""
    n = base.n
    if n == 0:
        empty = np.full(RESAMPLES, math.nan)
        return empty, empty
    length = block_length(window_differences(base, cand))
    starts = _starts(rng, n, length, RESAMPLES)
    b = to_values(base, _replicates(base, length, starts))
    return b, to_values(cand, _replicates(cand, length, starts))
