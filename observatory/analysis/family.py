"""The family of candidate-vs-baseline comparisons: which metric, for which name.

Everything listed here is tested together and corrected together (Benjamini-
Hochberg), so adding a metric costs every other one a little power: only metrics
someone acts on belong here.
"""

from __future__ import annotations

from observatory.analysis.bootstrap import Sample
from observatory.analysis.bursts import find_bursts
from observatory.analysis.comparison import Evidence, compare
from observatory.analysis.histogram import describe, merged_percentiles
from observatory.analysis.metrics import (
    OVERALL,
    RunView,
    categories,
    category_samples,
    error_sample,
    late_sample,
    percentile_sample,
    throughput_sample,
)
from observatory.analysis.per_request import per_request_evidence
from observatory.analysis.resources import (
    Slope,
    cpu_sample,
    level_evidence,
    level_sample,
    memory_column,
    slope_evidence,
)
from observatory.analysis.thresholds import Limits
from observatory.domain import Series

# (series, percentile column, metric shown, threshold key)
PERCENTILE_METRICS: tuple[tuple[str, str, str, str], ...] = (
    (Series.LATENCY, "p50", "latency_p50", "latency_p50"),
    (Series.LATENCY, "p95", "latency_p95", "latency_p95"),
    (Series.LATENCY, "p99", "latency_p99", "latency_p99"),
    (Series.TTFT, "p50", "ttft_p50", "ttft_p50"),
    (Series.TTFT, "p99", "ttft_p99", "ttft_p99"),
    (Series.INTER_CHUNK, "p99", "inter_chunk_p99", "inter_chunk_p99"),
    (Series.OVERHEAD, "p50", "overhead_p50", "overhead_p50"),
    (Series.OVERHEAD, "p99", "overhead_p99", "overhead_p99"),
    (Series.OVERHEAD_HEADER, "p50", "overhead_header_p50", "overhead_p50"),
    (Series.OVERHEAD_HEADER, "p99", "overhead_header_p99", "overhead_p99"),
)


def comparison_evidence(
    cand: RunView,
    base: RunView,
    limits: Limits,
    slopes: tuple[Slope, Slope],
    every: tuple[RunView, RunView] | None = None,
) -> list[Evidence]:
    """Evidence for every metric both runs measured; ``slopes``: (baseline, candidate).

    ``every``: (candidate, baseline) with the windows set aside kept, for error rates and
    log bytes.
    """
    evidence = _percentiles(cand, base, limits)
    evidence += _error_rates(*(every or (cand, base)), limits)
    evidence += _load_rates(cand, base, limits)
    evidence += _resources(cand, base, limits, slopes)
    evidence += per_request_evidence(cand, base, limits, every)
    return evidence


def _percentiles(cand: RunView, base: RunView, limits: Limits) -> list[Evidence]:
    merged = _merged(cand, base)
    evidence = []
    for name in sorted(set(cand.names) & set(base.names)):
        for series, column, metric, key in PERCENTILE_METRICS:
            if not (cand.has(series, name) and base.has(series, name)):
                continue
            b = percentile_sample(base, series, name, column)
            c = percentile_sample(cand, series, name, column)
            detail = f"{c.n} vs {b.n} steady windows"
            if series == Series.LATENCY and name in merged:
                whole = describe(merged[name][0], merged[name][1], column)
                detail += f"; {whole}" if whole else ""
            evidence.append(
                compare(
                    metric,
                    name,
                    b,
                    c,
                    key=key,
                    unit="ms",
                    min_windows=limits.min_windows,
                    detail=detail,
                )
            )
    return evidence


def _merged(cand: RunView, base: RunView) -> dict[str, tuple[dict[str, float], dict[str, float]]]:
    """Whole-run latency percentiles per name, when both runs recorded histograms."""
    out = {}
    for name in set(cand.names) & set(base.names):
        b_rows = base.rows(Series.LATENCY, name)["histogram"]
        c_rows = cand.rows(Series.LATENCY, name)["histogram"]
        if (b_rows != "").any() and (c_rows != "").any():
            out[name] = (merged_percentiles(b_rows), merged_percentiles(c_rows))
    return out


def _error_rates(cand: RunView, base: RunView, limits: Limits) -> list[Evidence]:
    """Error rates per name, overall and per category, as counts (``bootstrap.COUNTED``)."""
    bursts = {series.name: series for series in find_bursts(cand.data)}
    pairs: list[tuple[str, str, Sample, Sample, str]] = []
    for name in (OVERALL, *sorted(set(cand.names) & set(base.names))):
        found = bursts.get(name)
        shape = found.describe() if found else ""
        pairs.append(
            ("error_rate", name, error_sample(base, name), error_sample(cand, name), shape)
        )
    kinds = sorted(categories(cand) | categories(base))
    b_cat, c_cat = category_samples(base, kinds), category_samples(cand, kinds)
    for kind in kinds:
        pairs.append((f"error_rate.{kind}", OVERALL, b_cat[kind], c_cat[kind], ""))
    least = limits.min_windows
    return [
        compare(m, name, b, c, key="error_rate", unit="%", min_windows=least,
                detail=failed_detail(b, c, bursts))
        for m, name, b, c, bursts in pairs
    ]  # fmt: skip


def failed_detail(base: Sample, cand: Sample, bursts: str = "") -> str:
    """'150 of 406 requests failed (37 %) vs 0 of 398 in the baseline, in 3 bursts ...'."""
    failed, requests = int(cand.num.sum()), int(cand.den.sum())
    share = f" ({100 * failed / requests:.2g} %)" if requests and failed else ""
    text = (
        f"{failed} of {requests} requests failed{share} "
        f"vs {int(base.num.sum())} of {int(base.den.sum())} in the baseline"
    )
    return f"{text}, {bursts}" if bursts and failed else text


def _load_rates(cand: RunView, base: RunView, limits: Limits) -> list[Evidence]:
    """Late sends (open model) or throughput (closed): what a busy host can move."""
    if cand.data.open_model:
        metric, b, c, unit = "late_rate", late_sample(base), late_sample(cand), "%"
    else:
        metric, b, c, unit = "throughput", throughput_sample(base), throughput_sample(cand), "req/s"
    return [compare(metric, OVERALL, b, c, key=metric, unit=unit, min_windows=limits.min_windows)]


def _resources(
    cand: RunView, base: RunView, limits: Limits, slopes: tuple[Slope, Slope]
) -> list[Evidence]:
    column = memory_column(cand.data, base.data)
    b_mem, c_mem = level_sample(base.data, column), level_sample(cand.data, column)
    evidence = [level_evidence(b_mem, c_mem, limits.min_windows)]
    if all(slope.long_enough for slope in slopes):
        # Shorter runs cannot tell a leak from start-up growth: the baseline-free
        # memory_leak finding says so, without making the whole run inconclusive.
        evidence.insert(0, slope_evidence(*slopes))
    b_cpu, c_cpu = cpu_sample(base.data), cpu_sample(cand.data)
    evidence.append(
        compare(
            "cpu",
            OVERALL,
            b_cpu,
            c_cpu,
            key="cpu",
            unit="%cpu",
            min_windows=limits.min_windows,
            detail="gateway process tree",
        )
    )
    return evidence
