"""Fault phases beyond impact and recovery: health probes, and the phases' own thresholds.

Health probes (``health:<path>`` requests, analysis.planes) are compared per phase: during
vs the calm before it (impact, informational) and against the baseline's same phase
(``phase.<fault>.health_p99``, which counts like any comparison with the baseline).

Gates are absolute limits a phase declares in its params (``observatory.faults.params``),
checked without a baseline, each one a finding that can make the run a regression:

- ``max_p99_ratio``: p99 during the phase / p99 in the calm before it, per data-plane
  request name (``phase.<fault>.gate.p99_ratio``; "p99 during slow Redis stays under 2x");
- ``max_error_rate``: data-plane failures / requests during the phase (``gate.error_rate``);
- ``max_recovery``: seconds from the phase's end until p99 and error rate are back to their
  calm level (``gate.recovery``; never recovering exceeds any limit);
- ``max_health_p99``: p99 of the health probes during the phase (``gate.health_p99``);
  more than 1 % of probes failing (a timeout, a 5xx) exceeds the limit whatever the p99.

The p99 of a whole phase comes from the merged HDR histograms of its windows (exact); data
without histograms (synthetic runs) fall back to the median of the per-window p99s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from observatory.analysis.comparison import Evidence, compare
from observatory.analysis.histogram import merged_percentiles
from observatory.analysis.metrics import OVERALL, RunView, latency_rows, percentile_sample
from observatory.analysis.phases import IMPACT, PhaseViews, phase_views, recovery_time
from observatory.analysis.planes import is_health
from observatory.analysis.rundata import RunData
from observatory.analysis.thresholds import Limits
from observatory.domain import Finding, FindingVerdict, Series
from observatory.faults.names import HEALTH_PREFIX

HEALTH_FAILURE_LIMIT = 0.01  # share of failed health probes that fails the health gate
MIN_WINDOWS = 3


def health_evidence(cand: RunData, base: RunData | None) -> list[Evidence]:
    """Health-probe p99 per phase: during vs the calm before (impact) and vs the baseline."""
    base_views = (
        {(i, v.phase.fault): v for i, v in enumerate(phase_views(base, keep=is_health))}
        if base is not None
        else {}
    )
    evidence = []
    for i, pv in enumerate(phase_views(cand, keep=is_health)):
        fault = pv.phase.fault
        for name in pv.during.names:
            label = f"health probe {name} during {fault}"
            impact = f"phase.{fault}{IMPACT}health_p99"
            evidence.append(_p99(impact, name, pv.before, pv.during, f"{label} vs the calm before"))
            other = base_views.get((i, fault))
            if other is not None:
                detail = f"{label}: candidate vs baseline"
                evidence.append(
                    _p99(f"phase.{fault}.health_p99", name, other.during, pv.during, detail)
                )
    return evidence


def _p99(metric: str, name: str, base: RunView, cand: RunView, detail: str) -> Evidence:
    return compare(
        metric,
        name,
        percentile_sample(base, Series.LATENCY, name, "p99"),
        percentile_sample(cand, Series.LATENCY, name, "p99"),
        key="latency_p99",
        unit="ms",
        min_windows=MIN_WINDOWS,
        detail=detail,
    )


def gate_findings(data: RunData, limits: Limits) -> list[Finding]:
    """One finding per threshold a phase declares (none for phases without thresholds)."""
    findings = []
    for pv, health in zip(phase_views(data), phase_views(data, keep=is_health), strict=True):
        params = pv.phase.params
        if (ratio := _limit(params, "max_p99_ratio")) is not None:
            findings += _ratio_gates(pv, ratio)
        if (errors := _limit(params, "max_error_rate")) is not None:
            findings.append(_error_gate(pv, errors))
        if (recovery := _limit(params, "max_recovery")) is not None:
            findings.append(_recovery_gate(pv, limits, recovery))
        if (health_p99 := _limit(params, "max_health_p99")) is not None:
            findings.append(_health_gate(health, health_p99))
    return findings


def whole_p99(run: RunView, name: str = OVERALL) -> float:
    """p99 (ms) over every request of ``name`` (all names: ``*``); NaN when there are none."""
    rows = latency_rows(run, name)
    rows = rows[rows["count"] > rows["failures"]]
    if rows.empty:
        return math.nan
    merged = merged_percentiles(rows["histogram"])
    if merged:
        return merged["p99"]
    return float(np.nanmedian(rows["p99"].to_numpy(dtype=float)))


def _totals(run: RunView) -> tuple[int, int]:
    """(requests, failures) over ``run``'s names."""
    rows: pd.DataFrame = latency_rows(run, OVERALL)
    return int(rows["count"].sum()), int(rows["failures"].sum())


def _gate(
    pv: PhaseViews,
    what: str,
    verdict: FindingVerdict,
    detail: str,
    *,
    name: str = OVERALL,
    baseline: float | None = None,
    candidate: float | None = None,
    delta: float | None = None,
    threshold: float | None = None,
    unit: str = "",
) -> Finding:
    phase = pv.phase
    return Finding(
        metric=f"phase.{phase.fault}.gate.{what}",
        name=name,
        verdict=verdict,
        baseline=baseline,
        candidate=candidate,
        delta=delta,
        ci_low=None,
        ci_high=None,
        p_value=None,
        threshold=threshold,
        unit=unit,
        detail=detail,
        at_s=phase.start_offset_s,
    )


def _limit(params: Mapping[str, object], key: str) -> float | None:
    value = params.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ratio_gates(pv: PhaseViews, limit: float) -> list[Finding]:
    """One per data-plane request name (a streaming p99 would hide a slower plain call)."""
    names = sorted(set(pv.before.names) | set(pv.during.names))
    return [_ratio_gate(pv, name, limit) for name in names] or [_ratio_gate(pv, OVERALL, limit)]


def _ratio_gate(pv: PhaseViews, name: str, limit: float) -> Finding:
    calm, during = whole_p99(pv.before, name), whole_p99(pv.during, name)
    fault = pv.phase.fault
    if math.isnan(calm) or math.isnan(during) or calm <= 0:
        return _gate(
            pv, "p99_ratio", FindingVerdict.INCONCLUSIVE,
            f"no {name} requests answered {'before' if math.isnan(calm) else 'during'} "
            f"{fault}: p99 ratio not measured (limit {limit:g}x)",
            name=name,
        )  # fmt: skip
    ratio = during / calm
    verdict = FindingVerdict.REGRESSION if ratio > limit else FindingVerdict.UNCHANGED
    detail = (
        f"p99 during {fault} {during:.4g} ms = {ratio:.2f}x the calm before it "
        f"({calm:.4g} ms; baseline column); limit {limit:g}x"
    )
    return _gate(
        pv, "p99_ratio", verdict, detail, name=name,
        baseline=calm, candidate=during, delta=ratio - 1, threshold=limit - 1, unit="ms",
    )  # fmt: skip


def _error_gate(pv: PhaseViews, limit: float) -> Finding:
    requests, failures = _totals(pv.during)
    fault = pv.phase.fault
    if requests == 0:
        return _gate(
            pv, "error_rate", FindingVerdict.INCONCLUSIVE,
            f"no data-plane requests during {fault}: error rate not measured",
        )  # fmt: skip
    rate = failures / requests
    verdict = FindingVerdict.REGRESSION if rate > limit else FindingVerdict.UNCHANGED
    detail = (
        f"{failures} of {requests} data-plane requests failed during {fault} "
        f"({rate:.2%}); limit {limit:.2%}"
    )
    return _gate(
        pv, "error_rate", verdict, detail,
        candidate=100 * rate, threshold=100 * limit, unit="%",
    )  # fmt: skip


def _recovery_gate(pv: PhaseViews, limits: Limits, limit: float) -> Finding:
    fault = pv.phase.fault
    if pv.after.steady_windows == 0 or pv.before.steady_windows == 0:
        return _gate(
            pv, "recovery", FindingVerdict.INCONCLUSIVE,
            f"no windows {'after' if pv.before.steady_windows else 'before'} {fault}: "
            f"recovery not measured (limit {limit:g} s)",
        )  # fmt: skip
    took = recovery_time(pv, limits)
    if took is None:
        detail = f"did not recover after {fault} before the next phase or the run's end"
        verdict = FindingVerdict.REGRESSION
    else:
        detail = f"recovered {took:.0f} s after {fault} ended"
        verdict = FindingVerdict.REGRESSION if took > limit else FindingVerdict.UNCHANGED
    return _gate(pv, "recovery", verdict, f"{detail}; limit {limit:g} s", candidate=took, unit="s")


def _health_gate(health: PhaseViews, limit_s: float) -> Finding:
    fault = health.phase.fault
    requests, failures = _totals(health.during)
    limit_ms = 1000.0 * limit_s
    if requests == 0:
        return _gate(
            health, "health_p99", FindingVerdict.INCONCLUSIVE,
            f"no health probes ({HEALTH_PREFIX}* requests) during {fault}: the scenario "
            "must probe health (control_plane_pressure.py does)",
            name=HEALTH_PREFIX + "*",
        )  # fmt: skip
    during, calm = whole_p99(health.during), whole_p99(health.before)
    failed = failures / requests
    slow = math.isnan(during) or during > limit_ms
    verdict = (
        FindingVerdict.REGRESSION
        if slow or failed > HEALTH_FAILURE_LIMIT
        else FindingVerdict.UNCHANGED
    )
    detail = (
        f"health probes during {fault}: p99 {during:.4g} ms (calm before: {calm:.4g} ms), "
        f"{failures} of {requests} failed; limit p99 {limit_ms:.4g} ms and "
        f"{HEALTH_FAILURE_LIMIT:.0%} failed"
    )
    return _gate(
        health, "health_p99", verdict, detail,
        name=HEALTH_PREFIX + "*", baseline=None if math.isnan(calm) else calm,
        candidate=None if math.isnan(during) else during, unit="ms",
    )  # fmt: skip
