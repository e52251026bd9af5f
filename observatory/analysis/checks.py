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
from observatory.analysis.resources import MIN_POINTS, MIN_SHORT_POINTS, Slope
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
    """A leak: the slope's lower bound clears the threshold (and the baseline's slope).

    A run with less than MIN_SPAN_S of steady samples is judged too (``_short_verdict``),
    when its interval is narrow enough and the growth holds over its second half.
    """
    limit = limits.of("memory_slope").absolute or 0.0
    known_base = base if base is not None and base.known else None
    floor = max(limit, known_base.mb_per_h if known_base else -math.inf)
    verdict, detail = _leak_verdict(cand, known_base, limit, floor)
    shown = cand.known
    return Finding(
        metric="memory_leak",
        name=OVERALL,
        verdict=verdict,
        baseline=known_base.mb_per_h if known_base else None,
        candidate=cand.mb_per_h if shown else None,
        delta=cand.mb_per_h if shown else None,
        ci_low=cand.low if shown else None,
        ci_high=cand.high if shown else None,
        p_value=None,
        threshold=limit,
        unit="MB/h",
        detail=detail,
    )


def _leak_verdict(
    cand: Slope, base: Slope | None, limit: float, floor: float
) -> tuple[FindingVerdict, str]:
    growth = _growth(cand, base, limit)
    if not cand.known:
        return FindingVerdict.INCONCLUSIVE, (
            f"not judged: {cand.points} memory samples after warm-up (need {MIN_POINTS})"
        )
    if not cand.long_enough:
        return _short_verdict(cand, base, limit, growth)
    if cand.low > floor:
        return FindingVerdict.REGRESSION, growth
    if cand.mb_per_h > floor:
        return FindingVerdict.INCONCLUSIVE, f"{growth}: the interval reaches below the limit"
    return FindingVerdict.UNCHANGED, growth


def _short_verdict(
    cand: Slope, base: Slope | None, limit: float, growth: str
) -> tuple[FindingVerdict, str]:
    """A run shorter than MIN_SPAN_S, whose slope may be start-up allocation.

    Judged only against a baseline measured the same way (the same code's start-up growth
    is in both): a regression needs enough samples and the candidate's slope minus the
    baseline's beyond the limit with its whole interval, over all steady samples AND over
    their second half (start-up growth flattens, a leak does not).
    """
    minutes = cand.span_s / 60
    if cand.points < MIN_SHORT_POINTS or base is None or base.span_s > 2 * cand.span_s:
        need = f"{MIN_SHORT_POINTS} samples and a baseline of about the same length"
        return FindingVerdict.INCONCLUSIVE, (
            f"not judged: {cand.points} memory samples over {minutes:.1f} min after warm-up; "
            f"a short run needs {need} to tell a leak from start-up growth"
        )
    more, low = cand.minus(base)
    if more <= limit:
        return FindingVerdict.UNCHANGED, f"{growth} ({minutes:.1f} min)"
    late_more, late_low = _late_difference(cand, base)
    halves = (
        f"second half {late_more:+.3g} MB/h more than the baseline's (at least {late_low:+.3g})"
    )
    if late_more <= limit:
        return FindingVerdict.UNCHANGED, f"{growth}; {halves}: growth that flattens is start-up"
    if low <= limit:
        return FindingVerdict.INCONCLUSIVE, (
            f"not judged: {growth}; over {minutes:.1f} min the interval of the difference "
            f"({more:+.3g} MB/h, at least {low:+.3g}) is too wide to clear the limit"
        )
    if not late_low > limit:  # NaN too: a half too short to fit
        return FindingVerdict.INCONCLUSIVE, f"not judged: {growth}; {halves}, too uncertain"
    return FindingVerdict.REGRESSION, f"{growth}; {halves} ({minutes:.1f} min)"


def _late_difference(cand: Slope, base: Slope) -> tuple[float, float]:
    if cand.late is None or base.late is None or not (cand.late.known and base.late.known):
        return math.nan, math.nan
    return cand.late.minus(base.late)


def _growth(cand: Slope, base: Slope | None, limit: float) -> str:
    """'gateway memory grows 54 MB/h [53.6, 54.8] vs 26 MB/h in the baseline; limit +10 MB/h'."""
    than = "" if base is None else f" vs {base.mb_per_h:.3g} MB/h in the baseline"
    return (
        f"gateway memory grows {cand.mb_per_h:.3g} MB/h [{cand.low:.3g}, {cand.high:.3g}]"
        f"{than}; limit +{limit:g} MB/h"
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
