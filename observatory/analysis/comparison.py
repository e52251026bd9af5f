"""Two samples of one metric -> evidence -> a finding with a verdict.

A finding is a regression only when the change is practically large (beyond the
metric's threshold) AND statistically clear: its Mann-Whitney p-value survives
Benjamini-Hochberg across the family, and its block-bootstrap interval excludes
every change smaller than half the threshold (the rank test sees windows, the
block bootstrap sees the run's autocorrelation; requiring both keeps noisy or
autocorrelated runs from looking more certain than they are). Baseline-free
("strict") evidence needs its whole interval beyond the threshold. Improvements
are judged the same way in the other direction. A change beyond the threshold
without that evidence is inconclusive, never unchanged.

Runs measured side by side are compared window by window (bootstrap.paired): the rank test
is then Wilcoxon's signed-rank test on the per-window differences.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats

from observatory.analysis.bootstrap import (
    Floats,
    Sample,
    delta_interval,
    lag1_autocorrelation,
    paired,
    window_differences,
)
from observatory.analysis.fdr import benjamini_hochberg
from observatory.analysis.thresholds import HIGHER_IS_BETTER, Limits, exceeds
from observatory.domain import Finding, FindingVerdict

# Metrics whose change is shown as a difference (percentage points, MB/h);
# every other delta is relative (candidate / baseline - 1).
ABSOLUTE_DELTA = frozenset({"error_rate", "late_rate", "memory_slope"})
# Rates of rare events (failures, late sends), compared as pooled counts (docs/statistics.md).
COUNTED = frozenset({"error_rate", "late_rate"})
# The interval must exclude changes smaller than this share of the threshold: "the
# best estimate is beyond the threshold, and the change is surely at least half of
# it". With zero here, a noisy metric (p99 of a low-rate name in a short run) would
# be flagged whenever noise pushed it past the threshold and a little beyond zero.
MIN_EFFECT = 0.5
SEVERITY = {
    FindingVerdict.REGRESSION: 0,
    FindingVerdict.INCONCLUSIVE: 1,
    FindingVerdict.IMPROVEMENT: 2,
    FindingVerdict.UNCHANGED: 3,
}


@dataclass(frozen=True, slots=True)
class Evidence:
    """Everything measured about one metric before the family-wide decision."""

    metric: str  # shown name, e.g. "latency_p99", "error_rate.http_500", "drift.latency_p99"
    name: str  # request name or "*"
    key: str  # threshold key in settings.METRICS
    unit: str
    baseline: float
    candidate: float
    relative: float  # candidate / baseline - 1
    absolute: float  # candidate - baseline, in threshold units
    ci_low: float  # interval of the shown delta
    ci_high: float
    p_value: float  # raw; NaN when there is no test
    enough: bool  # enough steady windows on both sides
    scale: float = 1.0  # display units per threshold unit (100 for rates)
    strict: bool = False  # the interval itself must clear the threshold (baseline-free checks)
    detail: str = ""
    at_s: float | None = None

    @property
    def worse(self) -> int:
        return -1 if self.key in HIGHER_IS_BETTER else 1

    @property
    def shown_delta(self) -> float:
        return self.absolute * self.scale if self.key in ABSOLUTE_DELTA else self.relative


def seeded_rng(*parts: str) -> np.random.Generator:
    """A generator seeded by the metric's identity: the same input gives the same answer."""
    return np.random.default_rng(zlib.crc32("/".join(parts).encode()))


def rank_p_value(base: Sample, cand: Sample) -> float:
    """Two-sided Mann-Whitney U p-value on per-window values, for autocorrelated windows.

    The plain test counts every window as independent evidence; with lag-1
    autocorrelation rho a run of n windows carries about n (1 - rho) / (1 + rho)
    independent ones, so the test's z is shrunk by the square root of that
    variance inflation (averaged over the two runs). 1.0 when nothing varies.
    Paired samples get the signed-rank test instead (``paired_p_value``).
    """
    pair = paired(base, cand)
    if pair is not None:
        return paired_p_value(window_differences(*pair))
    x, y = cand.per_window(), base.per_window()
    if x.size < 2 or y.size < 2:
        return math.nan
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0
    result = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    p = float(result.pvalue)
    if math.isnan(p):
        return 1.0
    inflation = (_inflation(x) + _inflation(y)) / 2
    z = float(stats.norm.isf(p / 2)) / math.sqrt(inflation)
    return float(2 * stats.norm.sf(z))


def paired_p_value(differences: Floats) -> float:
    """Two-sided Wilcoxon signed-rank p-value of per-window differences, shrunk like above."""
    if differences.size < 2:
        return math.nan
    if not np.any(differences):
        return 1.0
    result = stats.wilcoxon(differences, zero_method="zsplit", method="approx")
    p = float(result.pvalue)
    if math.isnan(p):
        return 1.0
    z = float(stats.norm.isf(p / 2)) / math.sqrt(_inflation(differences))
    return float(2 * stats.norm.sf(z))


def _inflation(values: Floats) -> float:
    rho = min(max(lag1_autocorrelation(values), 0.0), 0.9)
    return (1 + rho) / (1 - rho)


def _p_value(base: Sample, cand: Sample, key: str, bootstrap_p: float) -> float:
    """Rates of rare events: the block bootstrap's own p-value; everything else: ranks."""
    if key not in COUNTED:
        return rank_p_value(base, cand)
    if base.num.sum() + cand.num.sum() == 0:
        return 1.0  # no event on either side: nothing changed
    return bootstrap_p


def compare(
    metric: str,
    name: str,
    base: Sample,
    cand: Sample,
    *,
    key: str,
    unit: str,
    min_windows: int,
    detail: str = "",
    strict: bool = False,
) -> Evidence:
    """Evidence that ``cand`` differs from ``base`` (block bootstrap CI + rank test)."""
    pair = paired(base, cand)
    if pair is not None:
        base, cand = pair
        together = f"side by side: {cand.n} common windows"
        detail = f"{detail}; {together}" if detail else together
    b, c = base.value(), cand.value()
    enough = base.n >= min_windows and cand.n >= min_windows and math.isfinite(b + c)
    relative = c / b - 1 if b > 0 else math.nan
    absolute = (c - b) / cand.scale
    interval = delta_interval(
        base, cand, seeded_rng(metric, name), relative=key not in ABSOLUTE_DELTA
    )
    return Evidence(
        metric=metric,
        name=name,
        key=key,
        unit=unit,
        baseline=b,
        candidate=c,
        relative=relative,
        absolute=absolute,
        ci_low=interval.low,
        ci_high=interval.high,
        p_value=_p_value(base, cand, key, interval.p_value) if enough else math.nan,
        enough=enough,
        scale=cand.scale,
        strict=strict,
        detail=detail or f"{cand.n} vs {base.n} steady windows",
    )


def finalise(evidence: Sequence[Evidence], limits: Limits) -> list[Finding]:
    """Adjust p-values across the family, decide each verdict, sort by severity."""
    adjusted = benjamini_hochberg([e.p_value if e.enough else math.nan for e in evidence])
    findings = [_finding(e, q, limits) for e, q in zip(evidence, adjusted, strict=True)]
    return sort_findings(findings)


def sort_findings(findings: Sequence[Finding]) -> list[Finding]:
    """Regressions first, then inconclusive, improvements, unchanged; big changes first."""
    return sorted(findings, key=lambda f: (SEVERITY[f.verdict], -abs(_size(f))))


def _size(finding: Finding) -> float:
    if finding.delta is None or finding.threshold in (None, 0) or math.isnan(finding.delta):
        return 0.0
    return finding.delta / float(finding.threshold or 1.0)


def _shown_threshold(e: Evidence, limits: Limits) -> float:
    """The threshold in the unit of the shown delta."""
    threshold = limits.of(e.key)
    if e.key in ABSOLUTE_DELTA or threshold.relative is None:
        return (threshold.absolute or 0.0) * e.scale
    return threshold.relative


def _finding(e: Evidence, q: float, limits: Limits) -> Finding:
    verdict = verdict_of(e, q, limits)
    shown = _shown_threshold(e, limits)
    detail = e.detail
    if not e.enough:
        detail = f"not enough data: {e.detail} (need {limits.min_windows})"
    return Finding(
        metric=e.metric,
        name=e.name,
        verdict=verdict,
        baseline=_opt(e.baseline),
        candidate=_opt(e.candidate),
        delta=_opt(e.shown_delta),
        ci_low=_opt(e.ci_low),
        ci_high=_opt(e.ci_high),
        p_value=_opt(q),
        threshold=shown,
        unit=e.unit,
        detail=detail,
        at_s=e.at_s,
    )


def verdict_of(e: Evidence, q: float, limits: Limits) -> FindingVerdict:
    """The decision rule of docs/statistics.md for one finding."""
    if not e.enough:
        return FindingVerdict.INCONCLUSIVE
    threshold = limits.of(e.key)
    for direction, verdict in (
        (e.worse, FindingVerdict.REGRESSION),
        (-e.worse, FindingVerdict.IMPROVEMENT),
    ):
        if exceeds(threshold, e.relative, e.absolute, direction):
            bound = _shown_threshold(e, limits) * (1.0 if e.strict else MIN_EFFECT)
            clear = q <= limits.fdr and _interval_clears(e, direction, bound)
            return verdict if clear else FindingVerdict.INCONCLUSIVE
    return FindingVerdict.UNCHANGED


def _interval_clears(e: Evidence, direction: int, bound: float) -> bool:
    """The interval lies beyond ``bound`` (0, or the threshold when strict) on that side."""
    if math.isnan(e.ci_low) or math.isnan(e.ci_high):
        return True  # no interval for this metric: the rank test decides
    return e.ci_low > bound if direction > 0 else e.ci_high < -bound


def _opt(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def with_detail(finding: Finding, detail: str) -> Finding:
    return replace(finding, detail=detail)
