"""The findings table: most severe first, every number and name formatted once, here."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

from observatory.analysis.labels import metric_label, request_name
from observatory.analysis.verdict import BASELINE_FREE
from observatory.domain import Finding, FindingVerdict

SEVERITY = {
    FindingVerdict.REGRESSION: 0,
    FindingVerdict.INCONCLUSIVE: 1,
    FindingVerdict.IMPROVEMENT: 2,
    FindingVerdict.UNCHANGED: 3,
}
# domain.Finding: the delta is a relative change unless the unit or the metric says otherwise.
# The analysis reports rates (error, late) and memory slopes as differences: percentage
# points and MB/hour, and shows their thresholds in the same units.
ABSOLUTE_DELTA_UNITS = frozenset({"pp", "MB/h"})
ABSOLUTE_DELTA_METRICS = frozenset(
    {"error_rate", "late_rate", "memory_slope", "memory_leak", "error_ceiling"}
)
SLOPE_METRICS = ("memory_leak", "memory_slope")
MISSING = "\N{EN DASH}"


@dataclass(frozen=True, slots=True)
class FindingRowView:
    """One table row, every cell a display string."""

    verdict: str
    metric: str
    label: str  # the metric in words ("p99 latency")
    name: str
    baseline: str
    candidate: str
    delta: str
    interval: str
    p_value: str
    threshold: str
    onset: str
    detail: str


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Regressions first, then inconclusive, improvements, unchanged; big changes first."""
    return sorted(findings, key=_severity_key)


def _severity_key(finding: Finding) -> tuple[int, int, float, str, str]:
    # Within a verdict: a crash first, then by size in thresholds (how far past the line).
    crash = 0 if finding.metric == "crash" else 1
    size = _size(finding)
    return (
        SEVERITY.get(FindingVerdict(finding.verdict), 9),
        crash,
        -size,
        finding.metric,
        finding.name,
    )


def _size(finding: Finding) -> float:
    if not _finite(finding.delta):
        return -1.0
    scale = finding.threshold if _finite(finding.threshold) and finding.threshold else 1.0
    return abs(finding.delta / scale)


def memory_slope_finding(findings: Iterable[Finding]) -> Finding | None:
    """The analysis' fitted gateway memory slope (MB/h): the whole-run one when there is one."""
    slopes = [f for f in findings if f.metric in SLOPE_METRICS and f.candidate is not None]
    return next((f for f in slopes if f.name == "*"), slopes[0] if slopes else None)


def finding_rows(findings: Iterable[Finding]) -> list[FindingRowView]:
    return [_row(f) for f in sort_findings(findings)]


def delta_unit(f: Finding) -> str | None:
    """The unit of the finding's delta, or None when the delta is relative."""
    parts = set(f.metric.split("."))
    if f.unit not in ABSOLUTE_DELTA_UNITS and not parts & ABSOLUTE_DELTA_METRICS:
        return None
    return "pp" if f.unit in ("%", "pp") else f.unit


def _row(f: Finding) -> FindingRowView:
    unit = delta_unit(f)
    return FindingRowView(
        verdict=str(f.verdict),
        metric=f.metric,
        label=metric_label(f.metric),
        name=request_name(f.name),
        baseline=number(f.baseline, _value_unit(f.unit)),
        candidate=number(f.candidate, _value_unit(f.unit)),
        delta=delta(f.delta, unit),
        interval=interval(f.ci_low, f.ci_high, unit),
        p_value=p_value(f.p_value),
        threshold=threshold(f.threshold, unit),
        onset="" if f.at_s is None else f"{f.at_s / 60:.1f} min",
        detail=f.detail,
    )


def _value_unit(unit: str) -> str:
    """Values of a rate are percentages even where the delta is in points."""
    return "%" if unit == "pp" else unit


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def number(value: float | None, unit: str = "") -> str:
    if not _finite(value):
        return MISSING
    suffix = f" {unit}" if unit else ""
    return f"{value:.4g}{suffix}"


def delta(value: float | None, unit: str | None) -> str:
    """A relative delta (unit None) as a signed percentage, else a signed difference."""
    if not _finite(value):
        return MISSING
    if unit is not None:
        return f"{value:+.3g} {unit}".rstrip()
    return f"{100 * value:+.1f} %"


def interval(low: float | None, high: float | None, unit: str | None) -> str:
    if not (_finite(low) and _finite(high)):
        return MISSING
    return f"[{delta(low, unit)}, {delta(high, unit)}]"


def p_value(value: float | None) -> str:
    if not _finite(value):
        return MISSING
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def threshold(value: float | None, unit: str | None) -> str:
    if not _finite(value):
        return MISSING
    if unit is not None:
        return f"{value:.3g} {unit}".rstrip()
    return f"{100 * value:.3g} %"


@dataclass(frozen=True, slots=True)
class FindingGroups:
    """The findings as the page lists them: what matters open, the rest folded."""

    regressions: list[FindingRowView]
    improvements: list[FindingRowView]
    unchanged: list[FindingRowView]
    inconclusive: list[FindingRowView]
    not_judged: list[FindingRowView]  # baseline-free checks that had too little data
    not_judged_why: str


def group_findings(findings: Iterable[Finding]) -> FindingGroups:
    ordered = sort_findings(findings)
    not_judged = [f for f in ordered if _not_judged(f)]
    rest = [f for f in ordered if not _not_judged(f)]

    def rows(verdict: FindingVerdict) -> list[FindingRowView]:
        return [_row(f) for f in rest if f.verdict == verdict]

    return FindingGroups(
        regressions=rows(FindingVerdict.REGRESSION),
        improvements=rows(FindingVerdict.IMPROVEMENT),
        unchanged=rows(FindingVerdict.UNCHANGED),
        inconclusive=rows(FindingVerdict.INCONCLUSIVE),
        not_judged=[_row(f) for f in not_judged],
        not_judged_why=_why(not_judged),
    )


def _not_judged(f: Finding) -> bool:
    return f.verdict == FindingVerdict.INCONCLUSIVE and f.metric.startswith(BASELINE_FREE)


def _why(findings: list[Finding]) -> str:
    """The distinct reasons, most common first ("not enough data: last 0 min vs first 0 min")."""
    counts: dict[str, int] = {}
    for f in findings:
        reason = f.detail or "too little data"
        counts[reason] = counts.get(reason, 0) + 1
    ranked = sorted(counts, key=lambda r: -counts[r])
    more = f" (and {len(ranked) - 2} other reasons)" if len(ranked) > 2 else ""
    return "; ".join(ranked[:2]) + more
