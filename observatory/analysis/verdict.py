"""analyse(): a candidate run (and its baseline, if any) -> findings and one verdict.

Order of precedence for the run's verdict (docs/statistics.md):
a crash is a regression; any other regression finding makes it a regression; disturbed
measurements (a saturated load generator, or neighbours taking the host's CPU) void the
speed-bound findings (latency, overhead, CPU, throughput) and, with no regression among
the rest (errors, new failures, memory: a busy host cannot cause them), make the run
inconclusive; without a baseline the run is no_baseline; an inconclusive comparison with
the baseline (or a disturbed baseline) makes it inconclusive; otherwise it passes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
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
from observatory.analysis.failures import METRIC as NEW_FAILURE
from observatory.analysis.failures import new_failure_findings
from observatory.analysis.family import comparison_evidence
from observatory.analysis.host_speed import speed_difference
from observatory.analysis.labels import ALL_REQUESTS, subject
from observatory.analysis.metrics import OVERALL, RunView, view
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
# What a busy host cannot cause: judged on every steady window, set aside or not. Every
# other finding is voided when too many windows were set aside.
HOST_PROOF = ("error_rate", "error_ceiling", NEW_FAILURE, "memory_", "log_bytes", "crash")
# The order a human reads regressions in: crash, errors, memory and log volume, latency,
# the rest (a log flood slows the gateway too; the flood is the cause to name).
SERIOUSNESS = (
    ("crash",),
    (NEW_FAILURE, "error_rate", "change.error_rate", "drift.error_rate", "error_ceiling"),
    ("memory_", "log_bytes"),
    ("latency_", "ttft_", "change.latency", "drift.latency", "inter_chunk_", "overhead"),
)


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
    cand, every = view(candidate), view(candidate, keep_disturbed=True)
    base = base_every = None
    if baseline is not None:
        baseline = set_aside(baseline, thresholds.neighbour_cpu)
        base, base_every = view(baseline), view(baseline, keep_disturbed=True)
    slopes = _slopes(cand, base)
    pair = None if base_every is None else (every, base_every)
    compared = _compared(cand, base, limits, slopes, pair)
    points, checked = _baseline_free(cand, base, limits, slopes, every)
    found = [*compared, *checked, *new_failure_findings(every, baseline)]
    if cand.disturbed_fraction > DISTURBED_LIMIT:
        found = _voided(found, f"not judged: {disturbance(cand)}")
    findings = tuple(sort_findings(found))
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
    cand: RunView,
    base: RunView | None,
    limits: Limits,
    slopes: tuple[Slope | None, Slope],
    every: tuple[RunView, RunView] | None = None,
) -> list[Finding]:
    evidence: list[Evidence] = phase_evidence(cand.data, base.data if base else None, limits)
    evidence += health_evidence(cand.data, base.data if base else None)
    if base is not None and slopes[0] is not None:
        pair = (slopes[0], slopes[1])
        evidence = comparison_evidence(cand, base, limits, pair, every) + evidence
    findings = finalise(evidence, limits)
    if base is None:
        return findings
    if base.disturbed_fraction > DISTURBED_LIMIT:
        note = f"baseline disturbed ({disturbance(base)}): no comparison possible"
        return _voided([f for f in findings if not is_impact(f)], note)
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


def _voided(findings: list[Finding], note: str) -> list[Finding]:
    """Findings a busy host could have caused made inconclusive (``note`` says why)."""
    return [
        f
        if host_proof(f.metric) or is_impact(f)
        else replace(f, verdict=FindingVerdict.INCONCLUSIVE, detail=note)
        for f in findings
    ]


def host_proof(metric: str) -> bool:
    """A finding a busy host cannot cause (errors, new failures, memory, log volume, crash)."""
    return metric.removeprefix("change.").removeprefix("drift.").startswith(HOST_PROOF)


def _baseline_free(
    cand: RunView,
    base: RunView | None,
    limits: Limits,
    slopes: tuple[Slope | None, Slope],
    every: RunView,
) -> tuple[list[ChangePoint], list[Finding]]:
    data = cand.data
    alongside = base if base is not None and data.measured_with(base.data) else None
    points, findings = change_point_checks(cand, limits, alongside, every)
    findings += _drift(cand, base, limits)
    findings += ceiling_findings(every, limits)
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
    busy = cand.disturbed_fraction > DISTURBED_LIMIT
    if data.crash is not None:
        return Verdict.REGRESSION, f"gateway crashed: {data.crash}"
    if regressions:
        unjudged = f"; latency not judged: {disturbance(cand)}" if busy else ""
        return Verdict.REGRESSION, headline(regressions) + unjudged
    if busy:
        return (
            Verdict.INCONCLUSIVE,
            f"{disturbance(cand)}: the run did not measure the gateway alone",
        )
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


def seriousness(finding: Finding) -> int:
    """0 crash, 1 errors and new failures, 2 memory, 3 latency, 4 the rest."""
    for rank, prefixes in enumerate(SERIOUSNESS):
        if finding.metric.startswith(prefixes):
            return rank
    return len(SERIOUSNESS)


def by_seriousness(findings: Sequence[Finding]) -> list[Finding]:
    """Regressions in the order a human reads them (stable within a rank)."""
    return sorted(findings, key=seriousness)


ERROR_LEAD = (NEW_FAILURE, "error_rate", "error_rate.", "change.", "drift.", "error_ceiling")


def _error_lead(finding: Finding) -> int:
    """Which error finding leads the line: a name's error rate, a new failure, all names'
    rate, a category's, a change point, drift, the ceiling."""
    if finding.metric == "error_rate" and finding.name != OVERALL:
        return 0
    for rank, prefix in enumerate(ERROR_LEAD, start=1):
        if finding.metric.startswith(prefix):
            return rank
    return len(ERROR_LEAD) + 1


def headline(regressions: Sequence[Finding]) -> str:
    """The reason of a regression: the most serious finding, with a new failure beside
    an error rate ('chat: 150 of 406 requests failed (37 %) ...; new error "..." (150x)')."""
    ordered = by_seriousness(regressions)
    first = ordered[0]
    if seriousness(first) == 1:
        first = min((f for f in ordered if seriousness(f) == 1), key=_error_lead)
    text, shown = describe(first), 1
    new = [f for f in ordered if f.metric == NEW_FAILURE and f is not first]
    if new and first.metric != NEW_FAILURE:
        same = [f for f in new if f.name == first.name] or new
        where = "" if same[0].name == first.name else f" on {same[0].name}"
        text, shown = f"{text}; {_new_error(same[0])}{where}", 2
    more = len(regressions) - shown
    return text + (f" (and {more} more)" if more > 0 else "")


def _new_error(finding: Finding) -> str:
    return finding.detail.split("; never in the baseline")[0]


def describe(finding: Finding) -> str:
    """One line for a finding: 'p99 latency of chat +23.1 % (110 -> 135 ms)'."""
    if finding.metric == NEW_FAILURE:
        return f"{finding.name}: {_new_error(finding)}"
    if finding.metric.startswith("memory_") and finding.detail:
        return finding.detail  # "gateway memory level 346 MB vs 275 MB in the baseline (...)"
    if finding.metric.startswith("error_rate") and finding.detail:
        kind = finding.metric.removeprefix("error_rate").removeprefix(".")
        who = finding.name if finding.name != OVERALL else ALL_REQUESTS
        who = f"{kind} errors of {who}" if kind else who
        return f"{who}: {finding.detail.split('; side by side')[0]}"
    what = subject(finding.metric, finding.name)
    if finding.metric in ("memory_leak", "memory_slope") and finding.candidate is not None:
        return f"gateway memory {_growth(finding)}"
    if finding.metric.startswith(("change.", "error_ceiling", "crash")) or (finding.delta is None):
        return f"{what}: {finding.detail}"
    if finding.unit in ("%", "pp", "MB/h", "s"):
        unit = "pp" if finding.unit == "%" else finding.unit
        change = f"{finding.delta:+.3g} {unit}"
    else:
        change = f"{finding.delta:+.1%}".replace("%", " %")
    values = ""
    if finding.baseline is not None and finding.candidate is not None:
        values = f" ({finding.baseline:.4g} -> {finding.candidate:.4g} {finding.unit})"
    return f"{what} {change}{values}"


def _growth(f: Finding) -> str:
    """'grows 54.2 MB/h [53.6, 54.8] vs 26 MB/h in the baseline; limit +10 MB/h'."""
    text = f"grows {f.candidate:.3g} MB/h"
    low, high = (f.ci_low, f.ci_high) if f.metric == "memory_leak" else (None, None)
    if low is not None and high is not None:
        text += f" [{low:.3g}, {high:.3g}]"
    if f.baseline is not None:
        text += f" vs {f.baseline:.3g} MB/h in the baseline"
    if f.threshold is not None:
        text += f"; limit +{f.threshold:.3g} MB/h"
    return text
