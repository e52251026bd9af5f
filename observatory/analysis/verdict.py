"""analyse(): a candidate run (and its baseline, if any) -> findings and one verdict.

Order of precedence for the run's verdict (docs/statistics.md):
a crash is a regression; disturbed measurements (a saturated load generator, or
neighbours taking the host's CPU) make the run inconclusive, never a regression; any
other regression finding makes it a regression; without a baseline the run is
no_baseline; an inconclusive comparison with the baseline (or a disturbed baseline)
makes it inconclusive; otherwise it passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from observatory.analysis.changepoint import ChangePoint
from observatory.analysis.checks import (
    HOST_NOTE,
    ceiling_findings,
    change_point_checks,
    crash_finding,
    drift_evidence,
    leak_finding,
    same_shape,
)
from observatory.analysis.comparison import Evidence, finalise, sort_findings
from observatory.analysis.family import comparison_evidence
from observatory.analysis.host_speed import speed_difference
from observatory.analysis.metrics import RunView, view
from observatory.analysis.phase_checks import gate_findings, health_evidence
from observatory.analysis.phases import is_impact, phase_evidence, recovery_findings
from observatory.analysis.resources import Slope, memory_column, memory_series, memory_slope
from observatory.analysis.rundata import RunData
from observatory.analysis.shared_host import set_aside
from observatory.analysis.thresholds import Limits, resolve
from observatory.domain import Finding, FindingVerdict, Verdict
from observatory.settings import MetricThreshold, ThresholdSettings

DISTURBED_LIMIT = 0.10  # more disturbed windows than this: the run did not measure the gateway
# Checks that need no baseline can only add regressions: their inconclusive findings
# are shown, but do not make the run inconclusive (they are conservative by design).
BASELINE_FREE = ("drift.", "change.", "error_ceiling", "memory_leak")
# What a slower host moves (error rates, late sends and memory it does not).
SPEED_BOUND = ("latency_", "ttft_", "inter_chunk_", "overhead", "cpu", "throughput")


@dataclass(frozen=True)
class Analysis:
    verdict: Verdict
    reason: str  # one line a human reads first
    findings: tuple[Finding, ...]  # sorted by severity
    change_points: tuple[ChangePoint, ...]
    saturated: bool


def analyse(
    candidate: RunData,
    baseline: RunData | None,
    thresholds: ThresholdSettings,
    overrides: Mapping[str, MetricThreshold] = {},
) -> Analysis:
    """Compare ``candidate`` with ``baseline`` and run the baseline-free checks."""
    candidate.validate()
    if baseline is not None:
        baseline.validate()
    limits = resolve(thresholds, overrides)
    candidate = set_aside(candidate, thresholds.neighbour_cpu)
    cand = view(candidate)
    base = None if baseline is None else view(set_aside(baseline, thresholds.neighbour_cpu))
    slopes = _slopes(cand, base)
    compared = _compared(cand, base, limits, slopes)
    points, checked = _baseline_free(cand, base, limits, slopes)
    findings = tuple(sort_findings([*compared, *checked]))
    verdict, reason = decide(candidate, cand, base, findings, limits)
    return Analysis(
        verdict=verdict,
        reason=reason,
        findings=findings,
        change_points=tuple(sorted(points, key=lambda p: p.at_s)),
        saturated=cand.saturated_fraction > DISTURBED_LIMIT,
    )


def _slopes(cand: RunView, base: RunView | None) -> tuple[Slope | None, Slope]:
    """Gateway memory slopes (baseline, candidate), measured on the same column."""
    column = memory_column(cand.data, *([base.data] if base else []))
    mine = memory_slope(*memory_series(cand.data, column))
    if base is None:
        return None, mine
    return memory_slope(*memory_series(base.data, column)), mine


def _compared(
    cand: RunView, base: RunView | None, limits: Limits, slopes: tuple[Slope | None, Slope]
) -> list[Finding]:
    evidence: list[Evidence] = phase_evidence(cand.data, base.data if base else None, limits)
    evidence += health_evidence(cand.data, base.data if base else None)
    if base is not None and slopes[0] is not None:
        pair = (slopes[0], slopes[1])
        evidence = comparison_evidence(cand, base, limits, pair) + evidence
    findings = finalise(evidence, limits)
    if base is None:
        return findings
    if base.disturbed_fraction > DISTURBED_LIMIT:
        note = f"baseline disturbed ({disturbance(base)}): no comparison possible"
        return [
            replace(f, verdict=FindingVerdict.INCONCLUSIVE, detail=note)
            for f in findings
            if not is_impact(f)
        ]
    if cand.data.measured_with(base.data):
        return findings  # side by side: the host's speed was the same for both
    slower = speed_difference(cand.data, base.data, limits.host_speed)
    if slower is None:
        return findings
    return [
        replace(f, verdict=FindingVerdict.INCONCLUSIVE, detail=slower)
        if f.metric.startswith(SPEED_BOUND) and not is_impact(f)
        else f
        for f in findings
    ]


def _baseline_free(
    cand: RunView, base: RunView | None, limits: Limits, slopes: tuple[Slope | None, Slope]
) -> tuple[list[ChangePoint], list[Finding]]:
    data = cand.data
    alongside = base if base is not None and data.measured_with(base.data) else None
    points, findings = change_point_checks(cand, limits, alongside)
    findings += _drift(cand, base, limits)
    findings += ceiling_findings(cand, limits)
    findings.append(leak_finding(slopes[1], slopes[0], limits))
    findings += recovery_findings(data, base.data if base else None, limits)
    findings += gate_findings(data, limits)
    if data.crash is not None:
        findings.append(crash_finding(data.crash))
    return points, findings


def _drift(cand: RunView, base: RunView | None, limits: Limits) -> list[Finding]:
    """First-vs-last drift; side by side, a p99 drift the baseline shares is the host's."""
    findings = finalise(drift_evidence(cand.data, limits), limits)
    if base is None or not cand.data.measured_with(base.data):
        return findings
    host = {e.name: e.relative for e in drift_evidence(base.data, limits) if e.key != "error_rate"}
    return [_beyond_host(f, host.get(f.name)) for f in findings]


def _beyond_host(finding: Finding, host: float | None) -> Finding:
    if finding.verdict is not FindingVerdict.REGRESSION or finding.metric != "drift.latency_p99":
        return finding
    if host is None or finding.delta is None or not math.isfinite(host):
        return finding
    if not same_shape(1 + finding.delta, 1 + host):
        return finding
    note = f"{finding.detail}; {HOST_NOTE} ({host:+.0%})"
    return replace(finding, verdict=FindingVerdict.INCONCLUSIVE, detail=note)


def decide(
    data: RunData,
    cand: RunView,
    base: RunView | None,
    findings: tuple[Finding, ...],
    limits: Limits,
) -> tuple[Verdict, str]:
    """The run's verdict and the one line that explains it."""
    counted = [f for f in findings if not is_impact(f)]
    regressions = [f for f in counted if f.verdict is FindingVerdict.REGRESSION]
    usable = cand.steady_windows - cand.disturbed_windows
    if data.crash is not None:
        return Verdict.REGRESSION, f"gateway crashed: {data.crash}"
    if cand.disturbed_fraction > DISTURBED_LIMIT:
        return (
            Verdict.INCONCLUSIVE,
            f"{disturbance(cand)}: the run did not measure the gateway alone",
        )
    if regressions:
        more = f" (and {len(regressions) - 1} more)" if len(regressions) > 1 else ""
        return Verdict.REGRESSION, describe(regressions[0]) + more
    if usable < limits.min_windows:
        return Verdict.INCONCLUSIVE, (
            f"only {usable} usable steady windows (need {limits.min_windows})"
        )
    if base is None:
        return Verdict.NO_BASELINE, "no baseline to compare with; baseline-free checks passed"
    inconclusive = [
        f
        for f in counted
        if f.verdict is FindingVerdict.INCONCLUSIVE and not f.metric.startswith(BASELINE_FREE)
    ]
    if inconclusive:
        return Verdict.INCONCLUSIVE, f"inconclusive: {describe(inconclusive[0])}"
    compared = sum(1 for f in counted if f.baseline is not None)
    together = " measured side by side" if data.measured_with(base.data) else ""
    return Verdict.PASS, f"no regression in {compared} comparisons with the baseline{together}"


def disturbance(run: RunView) -> str:
    """What disturbed a run's windows: '... busy on the host in 23% of steady windows'."""
    parts = [
        f"{what} in {run.fraction(count):.0%}"
        for what, count in (
            ("load generator saturated", run.saturated_windows),
            ("other processes busy on the host", run.shared_windows),
        )
        if count
    ]
    return " and ".join(parts) + " of steady windows"


def describe(finding: Finding) -> str:
    """One line for a finding: 'latency_p99 of chat +23.1 % (110 -> 135 ms)'."""
    if finding.metric.startswith(("change.", "error_ceiling", "crash", "memory_")) or (
        finding.delta is None
    ):
        return f"{finding.metric} of {finding.name}: {finding.detail}"
    if finding.unit in ("%", "pp", "MB/h", "s"):
        unit = "pp" if finding.unit == "%" else finding.unit
        change = f"{finding.delta:+.3g} {unit}"
    else:
        change = f"{finding.delta:+.1%}".replace("%", " %")
    values = ""
    if finding.baseline is not None and finding.candidate is not None:
        values = f" ({finding.baseline:.4g} -> {finding.candidate:.4g} {finding.unit})"
    return f"{finding.metric} of {finding.name} {change}{values}"
