"""The findings table: most severe first, every number formatted once, here."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard

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
        name=f.name,
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
