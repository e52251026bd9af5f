"""Where a run changed: binary segmentation on the error-rate and p99 series.

The series is first reduced to at most ``MAX_POINTS`` bins (per minute for a
24-hour run, per window for runs up to four hours) so the search stays fast,
then each change found between bins is refined back to window resolution.

Test statistic: the standardised CUSUM (the Gaussian likelihood-ratio for one
shift in mean). Its noise scale is the long-run standard deviation of the noise
around a running median, sigma * sqrt((1 + rho) / (1 - rho)): windows are
autocorrelated, and a scale that ignored it would let slow wander pass for
change points. A split is
kept while its squared statistic exceeds ``penalty_factor * log(n)`` (BIC-like;
factor 3 keeps the false-alarm rate of a stationary run well under 1 %, see
docs/statistics.md) and both sides are at least a minute long.

Error counts are variance-stabilised first (Anscombe's arcsine transform of a
binomial proportion), p99 is taken on the log scale; sizes are reported on the
original scale.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from observatory.analysis.bootstrap import Floats, lag1_autocorrelation

MAX_POINTS = 1440
MAX_CHANGES = 12
PENALTY_FACTOR = 3.0
MIN_SEGMENT_S = 60.0


@dataclass(frozen=True, slots=True)
class ChangePoint:
    """A lasting shift in one series: ``before`` until ``at_s``, ``after`` from then on."""

    series: str  # "error_rate" | "latency_p99"
    name: str
    at_s: float  # offset in the run (window start)
    before: float
    after: float
    unit: str  # "%" or "ms"

    def describe(self) -> str:
        what = "errors" if self.series == "error_rate" else f"p99 of {self.name}"
        if self.series == "error_rate" and self.name != "*":
            what = f"errors of {self.name}"
        verb = "rose" if self.after > self.before else "fell"
        unit = " %" if self.unit == "%" else f" {self.unit}"
        return (
            f"{what} {verb} from {_num(self.before)}{unit} to {_num(self.after)}{unit} "
            f"at {format_offset(self.at_s)}"
        )


def _num(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def format_offset(seconds: float) -> str:
    """'61 min', '2 h 5 min', '45 s': how far into the run."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@dataclass(frozen=True)
class Signal:
    """A window-level series to search: y (transformed), and how to size a segment."""

    t: Floats  # window starts, sorted
    y: Floats  # one transformed value per window
    num: Floats  # for sizes: the statistic of a segment is sum(num) / sum(den)
    den: Floats
    log: bool  # sizes are exp(statistic)
    scale: float  # display factor

    def size(self, start: int, stop: int) -> float:
        den = float(self.den[start:stop].sum())
        if den <= 0:
            return math.nan
        stat = float(self.num[start:stop].sum()) / den
        return (math.exp(stat) if self.log else stat) * self.scale


def error_signal(t: Floats, failures: Floats, counts: Floats) -> Signal:
    """Failures/requests per window, arcsine-stabilised (variance ~ 1 / (4 n))."""
    keep = counts > 0
    f, n = failures[keep], counts[keep]
    y = np.arcsin(np.sqrt((f + 3 / 8) / (n + 3 / 4)))
    return Signal(t=t[keep], y=y, num=f, den=n, log=False, scale=100.0)


def log_signal(t: Floats, values: Floats) -> Signal:
    """A positive per-window value (p99, ms) on the log scale."""
    keep = np.isfinite(values) & (values > 0)
    logs = np.log(values[keep])
    return Signal(t=t[keep], y=logs, num=logs, den=np.ones_like(logs), log=True, scale=1.0)


def detect(signal: Signal, window_s: float, penalty_factor: float = PENALTY_FACTOR) -> list[int]:
    """Indices (into the signal's windows) where a new segment starts."""
    n = signal.y.size
    per_bin = max(1, math.ceil(n / MAX_POINTS))
    binned = _bin_means(signal.y, per_bin)
    min_len = max(2, math.ceil(MIN_SEGMENT_S / (window_s * per_bin)))
    cuts = segment(binned, penalty_factor * math.log(max(binned.size, 2)), min_len)
    if per_bin == 1:
        return cuts
    return sorted({_refine(signal.y, cut * per_bin, per_bin) for cut in cuts})


def _bin_means(y: Floats, per_bin: int) -> Floats:
    if per_bin == 1:
        return y
    bins = math.ceil(y.size / per_bin)
    padded = np.full(bins * per_bin, np.nan)
    padded[: y.size] = y
    means: Floats = np.nanmean(padded.reshape(bins, per_bin), axis=1)
    return means


def _refine(y: Floats, guess: int, per_bin: int) -> int:
    """The best single split within one bin either side of a bin-level change."""
    start, stop = max(0, guess - per_bin), min(y.size, guess + per_bin)
    split, _ = _best_split(y[start:stop], 1)
    return start + split if split > 0 else guess


def segment(y: Floats, penalty: float, min_len: int) -> list[int]:
    """Binary segmentation with a re-estimated long-run noise scale; sorted cut indices."""
    cuts: list[int] = []
    scale = _long_run_sd(y, 2 * min_len + 1)
    while scale > 0 and len(cuts) < MAX_CHANGES:
        best = _best_candidate(y, cuts, min_len)
        if best is None or best[1] / scale**2 <= penalty:
            break
        cuts = sorted([*cuts, best[0]])
    return cuts


def _best_candidate(y: Floats, cuts: list[int], min_len: int) -> tuple[int, float] | None:
    best: tuple[int, float] | None = None
    bounds = [0, *cuts, y.size]
    for start, stop in itertools.pairwise(bounds):
        split, stat = _best_split(y[start:stop], min_len)
        if split > 0 and (best is None or stat > best[1]):
            best = (start + split, stat)
    return best


def _best_split(y: Floats, min_len: int) -> tuple[int, float]:
    """argmax over k of the squared CUSUM (S_k - k/n S_n)^2 * n / (k (n - k))."""
    n = y.size
    if n < 2 * min_len:
        return 0, 0.0
    k = np.arange(min_len, n - min_len + 1)
    cumulative = np.cumsum(y)
    total = cumulative[-1]
    left = cumulative[k - 1]
    stat = (left - k / n * total) ** 2 * n / (k * (n - k))
    best = int(np.argmax(stat))
    return int(k[best]), float(stat[best])


def _long_run_sd(y: Floats, smooth: int) -> float:
    """Long-run sd of the noise around a running median of ``smooth`` points.

    A running median keeps level shifts (edges) and removes them from the residuals,
    so the noise scale is not swollen by the very change being looked for, as it
    would be with the series' own variance. rho is the residuals' lag-1
    autocorrelation; sigma * sqrt((1 + rho) / (1 - rho)) is the sd of a long mean.
    """
    if y.size < 4:
        return 0.0
    residuals = y - ndimage.median_filter(y, size=smooth, mode="nearest")
    rho = min(max(lag1_autocorrelation(residuals), 0.0), 0.9)
    return float(residuals.std()) * math.sqrt((1 + rho) / (1 - rho))


def change_points(
    signal: Signal, series: str, name: str, unit: str, window_s: float
) -> list[ChangePoint]:
    """Every change in ``signal`` with the level of the segments either side."""
    cuts = detect(signal, window_s)
    bounds = [0, *cuts, signal.y.size]
    points = []
    for i, cut in enumerate(cuts):
        before = signal.size(bounds[i], cut)
        after = signal.size(cut, bounds[i + 2])
        points.append(ChangePoint(series, name, float(signal.t[cut]), before, after, unit))
    return points
