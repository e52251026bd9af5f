"""Where a run changed: binary segmentation on the error-rate and p99 series.

The series is first reduced to at most ``MAX_POINTS`` bins (per minute for a
24-hour run, per window for runs up to four hours) so the search stays fast,
then each change found between bins is refined back to window resolution.

Test statistic: a likelihood ratio for one shift, divided by a noise factor
estimated so that level shifts stay out of it (unlike the series' plain variance):
- p99 (log scale, Gaussian): the squared standardised CUSUM over the long-run
  variance sigma^2 (1 + rho) / (1 - rho), estimated from lag-1 and lag-2
  differences; windows are autocorrelated, and a scale that ignored it would
  let slow wander pass for change points;
- errors (counts): the binomial log-likelihood ratio over the Pearson
  dispersion around a running rate (quasi-likelihood): errors come in bursts, and a Gaussian
  approximation of sparse counts (0 or 1 failures per window) has tails far
  heavier than it admits.
A split is kept while the statistic exceeds ``penalty_factor * log(n)``
(BIC-like; see docs/statistics.md for the false-alarm rate) and both sides are
at least a minute long.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from observatory.analysis.bootstrap import Floats

MAX_POINTS = 1440
MAX_CHANGES = 12
PENALTY_FACTOR = 4.0
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
    since_s: float | None = None  # where the ``before`` segment starts
    until_s: float | None = None  # where the ``after`` segment ends

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
    """A window-level series: the statistic of a stretch is sum(num) / sum(den)."""

    t: Floats  # window starts, sorted
    num: Floats
    den: Floats
    counts: bool  # binomial counts (num failures of den requests) or Gaussian values
    log: bool  # values are logs: sizes are exp(statistic)
    scale: float  # display factor

    def size(self, start: int, stop: int) -> float:
        den = float(self.den[start:stop].sum())
        if den <= 0:
            return math.nan
        stat = float(self.num[start:stop].sum()) / den
        return (math.exp(stat) if self.log else stat) * self.scale


def error_signal(t: Floats, failures: Floats, counts: Floats) -> Signal:
    """Failures out of requests per window."""
    keep = counts > 0
    return Signal(t[keep], failures[keep], counts[keep], counts=True, log=False, scale=100.0)


def log_signal(t: Floats, values: Floats) -> Signal:
    """A positive per-window value (p99, ms) on the log scale."""
    keep = np.isfinite(values) & (values > 0)
    logs = np.log(values[keep])
    return Signal(t[keep], logs, np.ones_like(logs), counts=False, log=True, scale=1.0)


def detect(signal: Signal, window_s: float, penalty_factor: float = PENALTY_FACTOR) -> list[int]:
    """Indices (into the signal's windows) where a new segment starts."""
    n = signal.num.size
    per_bin = max(1, math.ceil(n / MAX_POINTS))
    num, den = _bin_sums(signal.num, per_bin), _bin_sums(signal.den, per_bin)
    min_len = max(2, math.ceil(MIN_SEGMENT_S / (window_s * per_bin)))
    noise = _noise(num, den, signal.counts, 2 * min_len + 1)
    penalty = penalty_factor * math.log(max(num.size, 2))
    cuts = segment(num, den, signal.counts, noise, penalty, min_len)
    if per_bin == 1:
        return cuts
    return sorted({_refine(signal, cut * per_bin, per_bin) for cut in cuts})


def _bin_sums(values: Floats, per_bin: int) -> Floats:
    if per_bin == 1:
        return values
    bins = math.ceil(values.size / per_bin)
    padded = np.zeros(bins * per_bin)
    padded[: values.size] = values
    sums: Floats = padded.reshape(bins, per_bin).sum(axis=1)
    return sums


def _refine(signal: Signal, guess: int, per_bin: int) -> int:
    """The best single split within one bin either side of a bin-level change."""
    start, stop = max(0, guess - per_bin), min(signal.num.size, guess + per_bin)
    num, den = signal.num[start:stop], signal.den[start:stop]
    split, _ = _best_split(num, den, signal.counts, 1.0, 1)
    return start + split if split > 0 else guess


def segment(
    num: Floats, den: Floats, counts: bool, noise: float, penalty: float, min_len: int
) -> list[int]:
    """Binary segmentation: split the segment with the strongest change while it beats
    the penalty; sorted cut indices."""
    cuts: list[int] = []
    while noise > 0 and len(cuts) < MAX_CHANGES:
        best: tuple[int, float] | None = None
        for start, stop in itertools.pairwise([0, *cuts, num.size]):
            split, stat = _best_split(num[start:stop], den[start:stop], counts, noise, min_len)
            if split > 0 and (best is None or stat > best[1]):
                best = (start + split, stat)
        if best is None or best[1] <= penalty:
            break
        cuts = sorted([*cuts, best[0]])
    return cuts


def _best_split(
    num: Floats, den: Floats, counts: bool, noise: float, min_len: int
) -> tuple[int, float]:
    """(k, statistic) of the best single split of one segment; (0, 0) if too short."""
    n = num.size
    if n < 2 * min_len:
        return 0, 0.0
    k = np.arange(min_len, n - min_len + 1)
    if counts:
        stat = _binomial_lr(np.cumsum(num), np.cumsum(den), k)
    else:
        y = num / den
        cumulative = np.cumsum(y)
        stat = (cumulative[k - 1] - k / n * cumulative[-1]) ** 2 * n / (k * (n - k))
    stat = stat / noise
    best = int(np.argmax(stat))
    return int(k[best]), float(stat[best])


def _loglik(f: Floats, n: Floats) -> Floats:
    """Binomial log-likelihood at the maximum (0 log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(n > 0, f / np.where(n > 0, n, 1.0), 0.0)
        term_f = np.where(f > 0, f * np.log(np.where(p > 0, p, 1.0)), 0.0)
        ok = n - f
        term_ok = np.where(ok > 0, ok * np.log(np.where(p < 1, 1 - p, 1.0)), 0.0)
    result: Floats = term_f + term_ok
    return result


def _binomial_lr(cum_f: Floats, cum_n: Floats, k: np.ndarray) -> Floats:
    """2 * log-likelihood ratio of 'rate changes after k' against 'one rate'."""
    total_f, total_n = cum_f[-1], cum_n[-1]
    left_f, left_n = cum_f[k - 1], cum_n[k - 1]
    split = _loglik(left_f, left_n) + _loglik(total_f - left_f, total_n - left_n)
    whole = _loglik(np.array([total_f]), np.array([total_n]))[0]
    lr: Floats = 2 * (split - whole)
    return lr


def _noise(num: Floats, den: Floats, counts: bool, smooth: int) -> float:
    return _dispersion(num, den, smooth) if counts else _long_run_var(num / den, smooth)


def _long_run_var(y: Floats, smooth: int) -> float:
    """Long-run variance of AR(1)-like noise, from lag-1 and lag-2 differences.

    Differences hardly notice a level shift (it spoils one or two of them, and the
    largest 1 % are trimmed), while the series' own variance would swell with the
    very change being looked for. For AR(1) noise var(d1) = 2 s^2 (1 - rho) and
    var(d2) = 2 s^2 (1 - rho^2), so rho = var(d2) / var(d1) - 1, and
    s^2 (1 + rho) / (1 - rho) is n times the variance of a mean of n values.
    ``smooth`` (the shortest pair of segments) is also the least data worth estimating on.
    """
    if y.size < max(4, smooth):
        return 0.0
    v1 = _trimmed_mean_square(np.diff(y))
    v2 = _trimmed_mean_square(y[2:] - y[:-2])
    if v1 <= 0:
        return 0.0
    rho = min(max(v2 / v1 - 1, 0.0), 0.9)
    return v1 / (2 * (1 - rho)) * (1 + rho) / (1 - rho)


def _trimmed_mean_square(d: Floats) -> float:
    squares = np.sort(d**2)
    kept = squares[: max(1, math.floor(squares.size * 0.99))]
    return float(kept.mean())


def _dispersion(failures: Floats, requests: Floats, smooth: int) -> float:
    """Pearson dispersion of the counts around a running rate (1 = plain binomial).

    The running rate (sum over ``smooth`` windows) follows level shifts, so a real
    step does not pass for overdispersion. Never below 1: a quieter-than-binomial
    run is no reason to trust small changes more.
    """
    if failures.size < 4 or failures.sum() == 0:
        return 1.0
    kernel = np.ones(min(smooth, failures.size))  # "same" keeps the longer length
    rate = np.convolve(failures, kernel, "same") / np.convolve(requests, kernel, "same")
    expected = requests * rate
    variance = expected * (1 - rate)
    keep = variance > 0
    pearson = (failures[keep] - expected[keep]) ** 2 / variance[keep]
    return max(1.0, float(pearson.mean())) if pearson.size else 1.0


def change_points(
    signal: Signal, series: str, name: str, unit: str, window_s: float
) -> list[ChangePoint]:
    """Every change in ``signal`` with the level of the segments either side."""
    cuts = detect(signal, window_s)
    bounds = [0, *cuts, signal.num.size]
    points = []
    for i, cut in enumerate(cuts):
        before = signal.size(bounds[i], cut)
        after = signal.size(cut, bounds[i + 2])
        since, until = float(signal.t[bounds[i]]), float(signal.t[bounds[i + 2] - 1]) + window_s
        points.append(
            ChangePoint(series, name, float(signal.t[cut]), before, after, unit, since, until)
        )
    return points
