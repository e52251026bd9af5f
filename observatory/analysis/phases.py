"""Fault phases: impact during each phase, comparison with the baseline's same phase,
and how long the run took to recover after the phase ended.

Impact findings (``phase.<fault>.impact.*``) describe what the fault did to this
run compared with the calm just before it; a fault is meant to hurt, so they never
decide the run's verdict. What does decide it: the candidate during the phase
against the baseline during the same phase (``phase.<fault>.<metric>``), and
recovery (``phase.<fault>.recovery``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from observatory.analysis.comparison import Evidence, compare
from observatory.analysis.metrics import (
    OVERALL,
    RunView,
    error_sample,
    latency_rows,
    percentile_sample,
    phase_grace,
    view,
)
from observatory.analysis.planes import is_data_plane, select
from observatory.analysis.rundata import RunData
from observatory.analysis.thresholds import Limits, exceeds
from observatory.domain import FaultPhase, Finding, FindingVerdict, Series
from observatory.settings import MetricThreshold

IMPACT = ".impact."
SMOOTH_WINDOWS = 3  # recovery needs three windows in a row back to normal (median)


def is_impact(finding: Finding) -> bool:
    return finding.metric.startswith("phase.") and IMPACT in finding.metric


@dataclass(frozen=True)
class PhaseViews:
    phase: FaultPhase
    before: RunView  # calm before the phase (after warm-up and the previous phase's grace)
    during: RunView
    after: RunView  # from the phase's end to the next phase (or the run's end)


def phase_views(data: RunData, keep: Callable[[str], bool] = is_data_plane) -> list[PhaseViews]:
    """Before/during/after each phase, with the request names ``keep`` accepts (a phase is
    judged on its data plane: analysis.planes)."""
    ordered = sorted(data.phases, key=lambda p: p.start_offset_s)
    views = []
    calm_from = data.warmup_s
    for i, phase in enumerate(ordered):
        end = phase.start_offset_s + phase.duration_s
        following = ordered[i + 1].start_offset_s if i + 1 < len(ordered) else math.inf
        views.append(
            PhaseViews(
                phase=phase,
                before=select(_span(data, calm_from, phase.start_offset_s), keep),
                during=select(_span(data, phase.start_offset_s, end), keep),
                after=select(_span(data, end, following), keep),
            )
        )
        calm_from = end + phase_grace(data)
    return views


def _span(data: RunData, start: float, end: float) -> RunView:
    return view(data, start, end, exclude_phases=False)


def _pair(
    metric: str, name: str, base: RunView, cand: RunView, limits: Limits, detail: str
) -> Evidence:
    if metric == "error_rate":
        b, c = error_sample(base, name), error_sample(cand, name)
        unit = "%"
    else:
        b = percentile_sample(base, Series.LATENCY, name, "p99")
        c = percentile_sample(cand, Series.LATENCY, name, "p99")
        unit = "ms"
    label = "phase." + detail
    return compare(
        f"{label}.{metric}", name, b, c, key=metric, unit=unit, min_windows=3, detail=detail
    )


def phase_evidence(cand: RunData, base: RunData | None, limits: Limits) -> list[Evidence]:
    """Impact (during vs before) and, with a baseline, candidate vs baseline per phase."""
    base_views = {(i, v.phase.fault): v for i, v in enumerate(phase_views(base))} if base else {}
    evidence = []
    for i, pv in enumerate(phase_views(cand)):
        fault = pv.phase.fault
        keys = [("error_rate", OVERALL)] + [("latency_p99", n) for n in pv.during.names]
        for metric, name in keys:
            impact = _pair(metric, name, pv.before, pv.during, limits, f"{fault}.impact")
            evidence.append(
                _relabel(
                    impact,
                    f"phase.{fault}{IMPACT}{metric}",
                    f"during {fault} vs the calm before it",
                )
            )
            other = base_views.get((i, fault))
            if other is not None:
                same = _pair(metric, name, other.during, pv.during, limits, fault)
                evidence.append(
                    _relabel(
                        same, f"phase.{fault}.{metric}", f"during {fault}: candidate vs baseline"
                    )
                )
    return evidence


def _relabel(evidence: Evidence, metric: str, detail: str) -> Evidence:
    return replace(evidence, metric=metric, detail=detail)


def recovery_time(pv: PhaseViews, limits: Limits) -> float | None:
    """Seconds from the phase's end until every tracked series is back to its calm level.

    None when some series never got back before the next phase or the run's end.
    """
    end = pv.phase.start_offset_s + pv.phase.duration_s
    slowest = 0.0
    for back in _back_to_normal(pv, limits):
        if back is None:
            return None
        slowest = max(slowest, back - end)
    return slowest


def _back_to_normal(pv: PhaseViews, limits: Limits) -> list[float | None]:
    times = [_error_back(pv, limits)]
    for name in pv.before.names:
        times.append(_p99_back(pv, name, limits))
    return times


def _error_back(pv: PhaseViews, limits: Limits) -> float | None:
    before = _rolling_rate(pv.before)
    after = _rolling_rate(pv.after)
    calm = error_sample(pv.before, OVERALL).value() / 100
    if math.isnan(calm) or before.empty or after.empty:
        return None
    return _settled(before, after, calm, limits.of("error_rate"))


def _rolling_rate(run: RunView) -> pd.Series:
    """Failures / requests over the last SMOOTH_WINDOWS windows, indexed by window start."""
    rows = latency_rows(run, OVERALL).groupby("t", sort=True)[["failures", "count"]].sum()
    roll = rows.rolling(SMOOTH_WINDOWS, min_periods=1).sum()
    rate: pd.Series = roll["failures"] / roll["count"].where(roll["count"] > 0)
    return rate


def _p99_back(pv: PhaseViews, name: str, limits: Limits) -> float | None:
    before = _rolling_p99(pv.before, name)
    after = _rolling_p99(pv.after, name)
    if before.empty or after.empty:
        return None
    calm = float(np.nanmedian(pv.before.rows(Series.LATENCY, name)["p99"].to_numpy(dtype=float)))
    return _settled(before, after, calm, limits.of("latency_p99"))


def _rolling_p99(run: RunView, name: str) -> pd.Series:
    rows = run.rows(Series.LATENCY, name)
    values = pd.Series(rows["p99"].to_numpy(dtype=float), index=rows["t"].to_numpy(dtype=float))
    return values.rolling(SMOOTH_WINDOWS, min_periods=1).median()


def _settled(
    before: pd.Series, after: pd.Series, calm: float, threshold: MetricThreshold
) -> float | None:
    """When the smoothed series is back to normal: within the calm period's own range
    (its 95th percentile, same smoothing: noise is not a slow recovery) or within the
    practical threshold of the calm level."""
    usual = float(np.nanquantile(before.to_numpy(dtype=float), 0.95))
    values = after.to_numpy(dtype=float)
    ok = np.array(
        [
            v <= usual
            or not exceeds(threshold, v / calm - 1 if calm > 0 else math.inf, v - calm, +1)
            for v in values
        ]
    )
    return _first_settled(after.index.to_numpy(dtype=float), ok)


def _first_settled(t: np.ndarray, ok: np.ndarray) -> float | None:
    """Start of the first window from which the smoothed series stays normal for a while."""
    for i in range(ok.size):
        if ok[i : i + SMOOTH_WINDOWS].all():
            # the smoothing looks back SMOOTH_WINDOWS - 1 windows: credit the earliest one
            return float(t[max(0, i - SMOOTH_WINDOWS + 1)])
    return None


def recovery_findings(cand: RunData, base: RunData | None, limits: Limits) -> list[Finding]:
    slack = max(30.0, 3 * cand.window_s)
    base_views = {(i, v.phase.fault): v for i, v in enumerate(phase_views(base))} if base else {}
    findings = []
    for i, pv in enumerate(phase_views(cand)):
        other = base_views.get((i, pv.phase.fault))
        mine = recovery_time(pv, limits)
        theirs = recovery_time(other, limits) if other is not None else None
        verdict = _recovery_verdict(mine, theirs, other is not None, slack)
        if pv.before.steady_windows == 0 or pv.after.steady_windows == 0:
            verdict = FindingVerdict.INCONCLUSIVE
        findings.append(_recovery(pv.phase, mine, theirs, verdict, slack))
    return findings


def _recovery_verdict(
    mine: float | None, theirs: float | None, has_base: bool, slack: float
) -> FindingVerdict:
    if mine is None:
        if has_base and theirs is None:
            return FindingVerdict.UNCHANGED  # the baseline never recovered either
        return FindingVerdict.REGRESSION
    if not has_base or theirs is None:
        return FindingVerdict.UNCHANGED if not has_base else FindingVerdict.IMPROVEMENT
    if mine - theirs > slack:
        return FindingVerdict.REGRESSION
    if theirs - mine > slack:
        return FindingVerdict.IMPROVEMENT
    return FindingVerdict.UNCHANGED


def _recovery(
    phase: FaultPhase,
    mine: float | None,
    theirs: float | None,
    verdict: FindingVerdict,
    slack: float,
) -> Finding:
    said = "did not recover" if mine is None else f"recovered {mine:.0f} s after it ended"
    return Finding(
        metric=f"phase.{phase.fault}.recovery",
        name=OVERALL,
        verdict=verdict,
        baseline=theirs,
        candidate=mine,
        delta=mine - theirs if mine is not None and theirs is not None else None,
        ci_low=None,
        ci_high=None,
        p_value=None,
        threshold=slack,
        unit="s",
        detail=f"after {phase.fault} ({phase.duration_s:.0f} s from "
        f"{phase.start_offset_s:.0f} s) the run {said}",
        at_s=phase.start_offset_s + phase.duration_s,
    )
