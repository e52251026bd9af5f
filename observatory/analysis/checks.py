"""Checks that need no baseline: change points, drift, error ceiling, leak, crash."""

from __future__ import annotations

import math

import numpy as np

from observatory.analysis.changepoint import (
    ChangePoint,
    Signal,
    change_points,
    error_signal,
    log_signal,
)
from observatory.analysis.comparison import Evidence, compare
from observatory.analysis.metrics import (
    OVERALL,
    RunView,
    error_sample,
    latency_rows,
    percentile_sample,
    view,
)
from observatory.analysis.resources import MIN_SPAN_S, Slope
from observatory.analysis.rundata import RunData
from observatory.analysis.thresholds import Limits, exceeds
from observatory.domain import Finding, FindingVerdict, Series

DRIFT_PART_S = 3600.0  # compare the first and the last hour ...
DRIFT_FRACTION = 0.2  # ... or the first and last fifth of a shorter run


def _signals(run: RunView, every: RunView) -> list[tuple[Signal, str, str, str]]:
    """(signal, series, name, unit) for every series searched for change points.

    Error series come from ``every`` (the windows set aside kept), p99 from ``run``.
    """
    signals = []
    for name in (OVERALL, *every.names):
        rows = latency_rows(every, name)
        per_t = rows.groupby("t", sort=True)[["failures", "count"]].sum()
        signal = error_signal(
            per_t.index.to_numpy(dtype=float),
            per_t["failures"].to_numpy(dtype=float),
            per_t["count"].to_numpy(dtype=float),
        )
        signals.append((signal, "error_rate", name, "%"))
    for name in run.names:
        rows = run.rows(Series.LATENCY, name)
        rows = rows[rows["count"] > 0]
        signal = log_signal(rows["t"].to_numpy(dtype=float), rows["p99"].to_numpy(dtype=float))
        signals.append((signal, "latency_p99", name, "ms"))
    return signals


def change_point_checks(
    run: RunView, limits: Limits, alongside: RunView | None = None, every: RunView | None = None
) -> tuple[list[ChangePoint], list[Finding]]:
    """All change points, and a regression finding for each rise beyond its threshold.

    ``alongside``: a baseline measured side by side. A p99 rise that the baseline shows too
    over the same stretches (``same_shape``) is the host's: an inconclusive finding that
    says so, not a regression.
    """
    points: list[ChangePoint] = []
    findings: list[Finding] = []
    for signal, series, name, unit in _signals(run, every or run):
        if signal.num.size < 2 * limits.min_windows:
            continue
        found = change_points(signal, series, name, unit, run.data.window_s)
        points.extend(found)
        rises = (_rise(p, limits, host_rise(p, alongside)) for p in found)
        findings.extend(f for f in rises if f is not None)
    return points, findings


HOST_SHARE = 0.5
HOST_NOTE = "the baseline, measured side by side, rose too: the host, not the build"


def host_rise(point: ChangePoint, alongside: RunView | None) -> float:
    """The baseline's p99 after / before over the point's stretches (1.0 when unknown)."""
    if alongside is None or point.series != "latency_p99" or point.since_s is None:
        return 1.0
    rows = alongside.rows(Series.LATENCY, point.name)
    rows = rows[(rows["count"] > 0) & (rows["p99"] > 0)]
    t, logs = rows["t"].to_numpy(dtype=float), np.log(rows["p99"].to_numpy(dtype=float))
    before = logs[(t >= point.since_s) & (t < point.at_s)]
    after = logs[(t >= point.at_s) & (t < (point.until_s or math.inf))]
    if before.size == 0 or after.size == 0:
        return 1.0
    return math.exp(float(after.mean() - before.mean()))


def same_shape(own: float, host: float) -> bool:
    """The baseline alongside rose at least half as much (in log terms) as the candidate.

    Both rises are noisy estimates over the same stretches; the whole-run comparison,
    window by window, is what judges a candidate that rose more than its baseline.
    """
    return own > 1.0 and host > 1.0 and math.log(host) >= HOST_SHARE * math.log(own)


def _rise(point: ChangePoint, limits: Limits, host: float = 1.0) -> Finding | None:
    scale = 100.0 if point.series == "error_rate" else 1.0
    own = point.after / point.before if point.before > 0 else math.inf
    absolute = (point.after - point.before) / scale
    threshold = limits.of(point.series)
    if not exceeds(threshold, own - 1, absolute, +1):
        return None
    verdict, detail = FindingVerdict.REGRESSION, point.describe()
    if same_shape(own, host):
        verdict, detail = FindingVerdict.INCONCLUSIVE, f"{detail}; {HOST_NOTE}"
    is_rate = point.series == "error_rate"
    return Finding(
        metric=f"change.{point.series}",
        name=point.name,
        verdict=verdict,
        baseline=point.before,
        candidate=point.after,
        delta=point.after - point.before if is_rate else _finite(own - 1),
        ci_low=None,
        ci_high=None,
        p_value=None,
        threshold=(threshold.absolute or 0.0) * 100 if is_rate else threshold.relative,
        unit="pp" if is_rate else "ms",
        detail=detail,
        at_s=point.at_s,
    )


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def drift_evidence(data: RunData, limits: Limits) -> list[Evidence]:
    """The last hour (or fifth) of the run against the first, within the candidate.

    Strict, like the leak check: with no baseline to confirm it, drift counts only
    when the whole confidence interval lies beyond the threshold.
    """
    part = min(DRIFT_PART_S, (data.duration_s - data.warmup_s) * DRIFT_FRACTION)
    first = view(data, data.warmup_s, data.warmup_s + part)
    last = view(data, data.duration_s - part)
    spans = ((data.warmup_s, data.warmup_s + part), (data.duration_s - part, math.inf))
    errors = [error_sample(view(data, a, b, keep_disturbed=True), OVERALL) for a, b in spans]
    pairs = [("error_rate", OVERALL, errors[0], errors[1])]
    for name in first.names:
        before = percentile_sample(first, Series.LATENCY, name, "p99")
        after = percentile_sample(last, Series.LATENCY, name, "p99")
        pairs.append(("latency_p99", name, before, after))
    detail = f"last {part / 60:.0f} min vs first {part / 60:.0f} min of steady state"
    return [
        compare(
            f"drift.{key}",
            name,
            before,
            after,
            key=key,
            unit="%" if key == "error_rate" else "ms",
            min_windows=limits.min_windows,
            detail=detail,
            strict=True,
        )
        for key, name, before, after in pairs
    ]


def ceiling_findings(run: RunView, limits: Limits) -> list[Finding]:
    """Error rate above the absolute ceiling, overall (always reported) and per name."""
    findings = []
    for name in (OVERALL, *run.names):
        sample = error_sample(run, name)
        rate = sample.value()
        if math.isnan(rate):
            continue
        breached = rate > limits.error_rate_ceiling * 100
        if breached or name == OVERALL:
            findings.append(
                Finding(
                    metric="error_ceiling",
                    name=name,
                    verdict=FindingVerdict.REGRESSION if breached else FindingVerdict.UNCHANGED,
                    baseline=None,
                    candidate=rate,
                    delta=rate - limits.error_rate_ceiling * 100,
                    ci_low=None,
                    ci_high=None,
                    p_value=None,
                    threshold=limits.error_rate_ceiling * 100,
                    unit="pp",
                    detail=f"error rate {rate:.3g} % over {int(sample.den.sum())} requests "
                    f"(ceiling {limits.error_rate_ceiling * 100:g} %)",
                )
            )
    return findings


def leak_finding(cand: Slope, base: Slope | None, limits: Limits) -> Finding:
    """A leak: the slope's lower bound clears the threshold (and the baseline's slope)."""
    limit = limits.of("memory_slope").absolute or 0.0
    floor = max(limit, base.mb_per_h if base is not None and base.known else -math.inf)
    if not cand.known:
        verdict = FindingVerdict.INCONCLUSIVE
    elif cand.low > floor:
        verdict = FindingVerdict.REGRESSION
    elif cand.mb_per_h > floor:
        verdict = FindingVerdict.INCONCLUSIVE
    else:
        verdict = FindingVerdict.UNCHANGED
    return Finding(
        metric="memory_leak",
        name=OVERALL,
        verdict=verdict,
        baseline=base.mb_per_h if base is not None and base.known else None,
        candidate=cand.mb_per_h if cand.known else None,
        delta=cand.mb_per_h if cand.known else None,
        ci_low=cand.low if cand.known else None,
        ci_high=cand.high if cand.known else None,
        p_value=None,
        threshold=limit,
        unit="MB/h",
        detail=_leak_detail(cand, floor),
    )


def _leak_detail(cand: Slope, floor: float) -> str:
    if not cand.long_enough:
        return (
            f"not judged: {cand.span_s / 60:.0f} min of samples after warm-up; a leak slope "
            f"needs {MIN_SPAN_S / 60:.0f} min (shorter, start-up growth looks like a leak)"
        )
    return (
        f"gateway memory slope after warm-up over {cand.span_s / 60:.0f} min "
        f"({cand.points} samples); flagged when the interval's lower bound clears {floor:.3g}"
    )


def crash_finding(description: str) -> Finding:
    return Finding(
        metric="crash",
        name=OVERALL,
        verdict=FindingVerdict.REGRESSION,
        baseline=None,
        candidate=None,
        delta=None,
        ci_low=None,
        ci_high=None,
        p_value=None,
        threshold=None,
        detail=f"gateway crashed: {description}",
    )
