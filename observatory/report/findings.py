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
# Units whose delta is a difference in that unit rather than a relative change
# (domain.Finding: "relative change unless unit says otherwise").
ABSOLUTE_DELTA_UNITS = frozenset({"pp", "MB/h", "MB/hour"})
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


def _severity_key(finding: Finding) -> tuple[int, float, str, str]:
    size = abs(finding.delta) if _finite(finding.delta) else -1.0
    return (SEVERITY.get(FindingVerdict(finding.verdict), 9), -size, finding.metric, finding.name)


def finding_rows(findings: Iterable[Finding]) -> list[FindingRowView]:
    return [_row(f) for f in sort_findings(findings)]


def _row(f: Finding) -> FindingRowView:
    return FindingRowView(
        verdict=str(f.verdict),
        metric=f.metric,
        name=f.name,
        baseline=number(f.baseline, f.unit),
        candidate=number(f.candidate, f.unit),
        delta=delta(f.delta, f.unit),
        interval=interval(f.ci_low, f.ci_high, f.unit),
        p_value=p_value(f.p_value),
        threshold=threshold(f.threshold, f.unit),
        onset="" if f.at_s is None else f"{f.at_s / 60:.1f} min",
        detail=f.detail,
    )


def _finite(value: float | None) -> TypeGuard[float]:
    return value is not None and math.isfinite(value)


def number(value: float | None, unit: str = "") -> str:
    if not _finite(value):
        return MISSING
    suffix = f" {unit}" if unit else ""
    return f"{value:.4g}{suffix}"


def delta(value: float | None, unit: str) -> str:
    if not _finite(value):
        return MISSING
    if unit in ABSOLUTE_DELTA_UNITS:
        return f"{value:+.3g} {unit}"
    return f"{100 * value:+.1f} %"


def interval(low: float | None, high: float | None, unit: str) -> str:
    if not (_finite(low) and _finite(high)):
        return MISSING
    return f"[{delta(low, unit)}, {delta(high, unit)}]"


def p_value(value: float | None) -> str:
    if not _finite(value):
        return MISSING
    return "< 0.0001" if value < 1e-4 else f"{value:.4f}"


def threshold(value: float | None, unit: str) -> str:
    if not _finite(value):
        return MISSING
    if unit in ABSOLUTE_DELTA_UNITS:
        return f"{value:.3g} {unit}"
    return f"{100 * value:.3g} %"
