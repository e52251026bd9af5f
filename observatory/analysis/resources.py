"""Gateway resources: memory slope (leaks), memory level and CPU.

Memory slope is Theil-Sen (median of pairwise slopes): robust to the GC sawtooth
and to a few wild samples, unlike least squares. Its confidence interval assumes
independent residuals; memory samples are autocorrelated, so the interval is
widened by sqrt((1 + rho) / (1 - rho)) (the AR(1) variance inflation, rho the
lag-1 autocorrelation of the residuals). Samples are reduced to at most
``MAX_POINTS`` bin medians first, which keeps the pairwise slopes of a 24-hour run
(17,280 samples at 5 s) from costing 150 million slopes. The second half of the
samples gets a slope of its own: on a short run, growth that flattens there is
start-up allocation, not a leak.

Memory level is the mean of every steady sample (averaged per window, so that runs
measured side by side pair window by window). Its interval treats the samples as the
autocorrelated series they are (an AR(1) variance inflation with effective degrees of
freedom): a step whose samples do not overlap is decisive, slow wander within a run is not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from observatory.analysis.bootstrap import (
    Floats,
    Sample,
    lag1_autocorrelation,
    paired,
    window_differences,
)
from observatory.analysis.comparison import Evidence
from observatory.analysis.metrics import in_phases
from observatory.analysis.rundata import RunData

GATEWAY = "gateway"
MAX_POINTS = 720
MIN_POINTS = 10
# Below this span of steady samples a slope may measure start-up allocation (pools, caches,
# lazy imports) rather than a leak: it is judged only with the short-run rule (checks.py).
MIN_SPAN_S = 600.0
SHORT_RHO = 0.8  # the least autocorrelation assumed for a short run's slope
MIN_SHORT_POINTS = 24  # a short run's slope needs this many samples (2 minutes at 5 s)
Z95 = 1.959963984540054
MIN_LEVEL_DF = 10.0  # t quantiles of fewer degrees of freedom: docs/statistics.md


@dataclass(frozen=True, slots=True)
class Slope:
    """Memory growth in MB/hour with its 95 % interval; ``late``: the second half alone."""

    mb_per_h: float
    low: float
    high: float
    points: int
    span_s: float
    late: Slope | None = None

    @property
    def known(self) -> bool:
        return self.points >= MIN_POINTS and math.isfinite(self.mb_per_h)

    @property
    def long_enough(self) -> bool:
        return self.span_s >= MIN_SPAN_S

    def minus(self, other: Slope) -> tuple[float, float]:
        """(difference, lower bound of its 95 % interval) of this slope and ``other``."""
        delta = self.mb_per_h - other.mb_per_h
        return delta, delta - Z95 * math.hypot(_se(self), _se(other))


def memory_column(*runs: RunData) -> str:
    """USS (memory unique to the gateway) when every run has it, else RSS."""
    for run in runs:
        if _gateway(run)["uss_mb"].notna().sum() < MIN_POINTS:
            return "rss_mb"
    return "uss_mb"


def _gateway(data: RunData) -> pd.DataFrame:
    res = data.resources
    return res[(res["role"] == GATEWAY) & (res["t"] >= data.warmup_s)].sort_values("t")


def memory_series(data: RunData, column: str) -> tuple[Floats, Floats]:
    """(t seconds, MB) of the gateway after warm-up, unavailable samples dropped."""
    rows = _gateway(data)
    t = rows["t"].to_numpy(dtype=float)
    mb = rows[column].to_numpy(dtype=float)
    keep = np.isfinite(mb)
    return t[keep], mb[keep]


def _bin_medians(t: Floats, y: Floats) -> tuple[Floats, Floats]:
    if t.size <= MAX_POINTS:
        return t, y
    edges = np.linspace(t[0], t[-1], MAX_POINTS + 1)
    index = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, MAX_POINTS - 1)
    order = np.argsort(index, kind="stable")
    starts = np.searchsorted(index[order], np.arange(MAX_POINTS))
    groups = np.split(order, starts[1:])
    kept = [g for g in groups if g.size]
    return (
        np.array([np.median(t[g]) for g in kept]),
        np.array([np.median(y[g]) for g in kept]),
    )


def memory_slope(t: Floats, mb: Floats, *, halves: bool = True) -> Slope:
    """Theil-Sen slope in MB/hour with an autocorrelation-widened 95 % interval."""
    if t.size < MIN_POINTS or np.ptp(t) <= 0:
        return Slope(math.nan, math.nan, math.nan, int(t.size), 0.0)
    slope, low, high = _fit(t, mb)
    half = t.size // 2
    late = memory_slope(t[half:], mb[half:], halves=False) if halves else None
    return Slope(slope, low, high, int(t.size), float(np.ptp(t)), late)


def _fit(t: Floats, mb: Floats) -> tuple[float, float, float]:
    """(slope, low, high) in MB/hour."""
    x, y = _bin_medians(t, mb)
    hours = (x - x[0]) / 3600.0
    slope, intercept, low, high = stats.theilslopes(y, hours, alpha=0.95)
    rho = unbiased_rho(lag1_autocorrelation(y - (intercept + slope * hours)), y.size, 0.95)
    if np.ptp(t) < MIN_SPAN_S:  # minutes of samples cannot show how slowly memory wanders
        rho = max(rho, SHORT_RHO)
    widen = math.sqrt((1 + rho) / (1 - rho))
    return float(slope), float(slope - (slope - low) * widen), float(slope + (high - slope) * widen)


def slope_evidence(base: Slope, cand: Slope) -> Evidence:
    """Candidate slope minus baseline slope, with a normal-approximation interval."""
    se = math.hypot(_se(base), _se(cand))
    delta = cand.mb_per_h - base.mb_per_h
    p = 2 * stats.norm.sf(abs(delta) / se) if se > 0 else math.nan
    return Evidence(
        metric="memory_slope",
        name="*",
        key="memory_slope",
        unit="MB/h",
        baseline=base.mb_per_h,
        candidate=cand.mb_per_h,
        relative=math.nan,
        absolute=delta,
        ci_low=delta - Z95 * se,
        ci_high=delta + Z95 * se,
        p_value=float(p),
        enough=base.known and cand.known,
        detail=f"gateway memory grows {cand.mb_per_h:.3g} MB/h vs {base.mb_per_h:.3g} MB/h in "
        f"the baseline (difference {delta:+.3g} MB/h, interval {delta - Z95 * se:+.3g} to "
        f"{delta + Z95 * se:+.3g}; Theil-Sen over {cand.points} vs {base.points} samples)",
    )


def _se(slope: Slope) -> float:
    return (slope.high - slope.low) / (2 * Z95)


def level_sample(data: RunData, column: str) -> Sample:
    """Gateway memory after warm-up, one mean per window (every sample, none set aside).

    Memory is not speed-bound: windows set aside for busy neighbours or a saturated load
    generator keep their samples here.
    """
    t, mb = memory_series(data, column)
    bins = np.floor(t / data.window_s) * data.window_s
    means = pd.Series(mb).groupby(bins).mean()
    starts = np.asarray(means.index, dtype=np.float64)
    values = np.asarray(means, dtype=np.float64)
    clock = None if data.started_at is None else starts + data.started_at
    return Sample(num=values, den=np.ones_like(values), t=clock)


def level_evidence(base: Sample, cand: Sample, min_windows: int) -> Evidence:
    """Mean memory level, candidate / baseline - 1, with an autocorrelation-aware interval.

    Side by side (``paired``), the per-window differences carry the uncertainty; apart, each
    run's mean does. Either way the variance of a mean of n autocorrelated values is that
    of n / f independent ones (``_mean_variance``), and the interval uses Student's t with
    the effective degrees of freedom, which stays honest for a few minutes of samples.
    """
    pair = paired(base, cand)
    together = pair is not None
    if pair is not None:
        base, cand = pair
    b, c = base.value(), cand.value()
    relative = c / b - 1 if b > 0 else math.nan
    if together:
        var, df = _mean_variance(window_differences(base, cand))
        se = math.sqrt(var) / b if b > 0 else math.nan
    else:
        (var_b, df_b), (var_c, df_c) = _mean_variance(base.num), _mean_variance(cand.num)
        se = (1 + relative) * math.sqrt(var_b / b**2 + var_c / c**2) if b > 0 else math.nan
        df = df_b + df_c
    low, high, p = _interval_and_p(relative, se, df)
    return Evidence(
        metric="memory_level",
        name="*",
        key="memory_level",
        unit="MB",
        baseline=b,
        candidate=c,
        relative=relative,
        absolute=c - b,
        ci_low=low,
        ci_high=high,
        p_value=p,
        enough=base.n >= min_windows and cand.n >= min_windows and math.isfinite(relative),
        detail=_level_detail(b, c, relative, low, high, together),
    )


def _mean_variance(values: Floats) -> tuple[float, float]:
    """Variance of the mean of autocorrelated values and its degrees of freedom.

    AR(1) inflation f = (1 + rho) / (1 - rho), rho corrected for its small-sample bias
    (+ (1 + 3 rho) / n): n values carry n / f independent ones, and their sample variance
    misses a share f / n of the true one, so var(mean) = s^2 f / (n - f). f is capped so
    that at least two effective values remain.
    """
    n = values.size
    if n < 4:
        return math.nan, math.nan
    x = np.arange(n, dtype=float)
    residuals = values - np.polyval(np.polyfit(x, values, 1), x)
    rho = unbiased_rho(lag1_autocorrelation(residuals), n, 0.99)
    f = min((1 + rho) / (1 - rho), n / 2)
    return float(np.var(residuals, ddof=2)) * f / (n - f), n / f - 1


def unbiased_rho(rho: float, n: int, cap: float) -> float:
    """Lag-1 autocorrelation less its small-sample bias (+ (1 + 3 rho) / n), in [0, cap].

    Over a few minutes of samples the plain estimate is far too low (about 0.65 for a true
    0.8 over 30 samples), and every interval built on it too narrow.
    """
    return min(max(rho + (1 + 3 * rho) / n, 0.0), cap)


def _interval_and_p(relative: float, se: float, df: float) -> tuple[float, float, float]:
    """Student-t interval of the relative change and its two-sided p-value."""
    if not (math.isfinite(relative) and math.isfinite(se) and df > 0):
        return math.nan, math.nan, math.nan
    if se <= 0:
        return relative, relative, 1.0 if relative == 0 else 0.0
    df = max(df, MIN_LEVEL_DF)
    t95 = float(stats.t.ppf(0.975, df))
    return relative - t95 * se, relative + t95 * se, float(2 * stats.t.sf(abs(relative) / se, df))


def _level_detail(
    b: float, c: float, relative: float, low: float, high: float, together: bool
) -> str:
    how = "measured side by side, window by window" if together else "every sample after warm-up"
    interval = "" if math.isnan(low) else f", interval {low * 100:+.0f} to {high * 100:+.0f} %"
    return (
        f"gateway memory level {c:.0f} MB vs {b:.0f} MB in the baseline "
        f"({relative * 100:+.0f} %{interval}; {how})"
    )


def cpu_sample(data: RunData) -> Sample:
    """Gateway CPU percent per sample, steady and outside fault phases."""
    rows = _gateway(data)
    t = rows["t"].to_numpy(dtype=float)
    cpu = rows["cpu_percent"].to_numpy(dtype=float)
    keep = np.isfinite(cpu) & ~in_phases(data, t)
    return Sample(num=cpu[keep], den=np.ones(int(keep.sum())))
