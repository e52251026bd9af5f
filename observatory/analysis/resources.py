"""Gateway resources: memory slope (leaks), memory peak and CPU.

Memory slope is Theil-Sen (median of pairwise slopes): robust to the GC sawtooth
and to a few wild samples, unlike least squares. Its confidence interval assumes
independent residuals; memory samples are autocorrelated, so the interval is
widened by sqrt((1 + rho) / (1 - rho)) (the AR(1) variance inflation, rho the
lag-1 autocorrelation of the residuals). Samples are reduced to at most
``MAX_POINTS`` bin medians first, which keeps the pairwise slopes of a 24-hour run
(17,280 samples at 5 s) from costing 150 million slopes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from observatory.analysis.bootstrap import Floats, Sample, lag1_autocorrelation
from observatory.analysis.comparison import Evidence
from observatory.analysis.metrics import in_phases
from observatory.analysis.rundata import RunData

GATEWAY = "gateway"
MAX_POINTS = 720
MIN_POINTS = 10
# A slope over a few minutes, extrapolated to MB/hour, measures start-up allocation (pools,
# caches, lazy imports), not a leak: below this span of steady samples it is unknown.
MIN_SPAN_S = 600.0
Z95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class Slope:
    """Memory growth in MB/hour with its 95 % interval."""

    mb_per_h: float
    low: float
    high: float
    points: int
    span_s: float

    @property
    def known(self) -> bool:
        return self.points >= MIN_POINTS and self.long_enough and math.isfinite(self.mb_per_h)

    @property
    def long_enough(self) -> bool:
        return self.span_s >= MIN_SPAN_S


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


def memory_slope(t: Floats, mb: Floats) -> Slope:
    """Theil-Sen slope in MB/hour with an autocorrelation-widened 95 % interval."""
    if t.size < MIN_POINTS or np.ptp(t) <= 0:
        return Slope(math.nan, math.nan, math.nan, int(t.size), 0.0)
    x, y = _bin_medians(t, mb)
    hours = (x - x[0]) / 3600.0
    slope, intercept, low, high = stats.theilslopes(y, hours, alpha=0.95)
    rho = min(max(lag1_autocorrelation(y - (intercept + slope * hours)), 0.0), 0.95)
    widen = math.sqrt((1 + rho) / (1 - rho))
    return Slope(
        mb_per_h=float(slope),
        low=float(slope - (slope - low) * widen),
        high=float(slope + (high - slope) * widen),
        points=int(t.size),
        span_s=float(np.ptp(t)),
    )


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
        detail=f"Theil-Sen over {cand.points} vs {base.points} samples after warm-up",
    )


def _se(slope: Slope) -> float:
    return (slope.high - slope.low) / (2 * Z95)


def peak_evidence(base: tuple[Floats, Floats], cand: tuple[Floats, Floats]) -> Evidence:
    """Peak memory; the rank test runs on per-bin maxima (a maximum has no useful bootstrap)."""
    b_max, c_max = _bin_maxima(*base), _bin_maxima(*cand)
    b = float(base[1].max()) if base[1].size else math.nan
    c = float(cand[1].max()) if cand[1].size else math.nan
    enough = b_max.size >= 3 and c_max.size >= 3
    p = math.nan
    if enough:
        p = float(stats.mannwhitneyu(c_max, b_max, method="asymptotic").pvalue)
        p = 1.0 if math.isnan(p) else p
    return Evidence(
        metric="memory_peak",
        name="*",
        key="memory_peak",
        unit="MB",
        baseline=b,
        candidate=c,
        relative=c / b - 1 if b > 0 else math.nan,
        absolute=c - b,
        ci_low=math.nan,
        ci_high=math.nan,
        p_value=p,
        enough=enough and base[1].size >= MIN_POINTS and cand[1].size >= MIN_POINTS,
        detail="rank test on per-minute maxima",
    )


def _bin_maxima(t: Floats, y: Floats, width_s: float = 60.0) -> Floats:
    if t.size == 0:
        return np.array([], dtype=float)
    index = ((t - t[0]) // width_s).astype(int)
    maxima = np.full(index.max() + 1, -np.inf)
    np.maximum.at(maxima, index, y)
    kept: Floats = maxima[np.isfinite(maxima)]
    return kept


def cpu_sample(data: RunData) -> Sample:
    """Gateway CPU percent per sample, steady and outside fault phases."""
    rows = _gateway(data)
    t = rows["t"].to_numpy(dtype=float)
    cpu = rows["cpu_percent"].to_numpy(dtype=float)
    keep = np.isfinite(cpu) & ~in_phases(data, t)
    return Sample(num=cpu[keep], den=np.ones(int(keep.sum())))
