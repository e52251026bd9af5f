"""The family of candidate-vs-baseline comparisons: which metric, for which name.

Everything listed here is tested together and corrected together (Benjamini-
Hochberg), so adding a metric costs every other one a little power: only metrics
someone acts on belong here.
"""

from __future__ import annotations

from observatory.analysis.bootstrap import Sample
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
    memory_column,
    memory_series,
    peak_evidence,
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
    cand: RunView, base: RunView, limits: Limits, slopes: tuple[Slope, Slope]
) -> list[Evidence]:
    """Evidence for every metric both runs measured; ``slopes``: (baseline, candidate)."""
    evidence = _percentiles(cand, base, limits)
    evidence += _rates(cand, base, limits)
    evidence += _resources(cand, base, limits, slopes)
    evidence += per_request_evidence(cand, base, limits)
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


def _rates(cand: RunView, base: RunView, limits: Limits) -> list[Evidence]:
    pairs: list[tuple[str, str, Sample, Sample, str, str]] = []
    for name in (OVERALL, *sorted(set(cand.names) & set(base.names))):
        pairs.append(
            (
                "error_rate",
                name,
                error_sample(base, name),
                error_sample(cand, name),
                "error_rate",
                "%",
            )
        )
    kinds = sorted(categories(cand) | categories(base))
    b_cat, c_cat = category_samples(base, kinds), category_samples(cand, kinds)
    for kind in kinds:
        pairs.append((f"error_rate.{kind}", OVERALL, b_cat[kind], c_cat[kind], "error_rate", "%"))
    if cand.data.open_model:
        pairs.append(("late_rate", OVERALL, late_sample(base), late_sample(cand), "late_rate", "%"))
    else:
        pairs.append(
            (
                "throughput",
                OVERALL,
                throughput_sample(base),
                throughput_sample(cand),
                "throughput",
                "req/s",
            )
        )
    return [
        compare(metric, name, b, c, key=key, unit=unit, min_windows=limits.min_windows)
        for metric, name, b, c, key, unit in pairs
    ]


def _resources(
    cand: RunView, base: RunView, limits: Limits, slopes: tuple[Slope, Slope]
) -> list[Evidence]:
    column = memory_column(cand.data, base.data)
    b_mem, c_mem = memory_series(base.data, column), memory_series(cand.data, column)
    evidence = [peak_evidence(b_mem, c_mem)]
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
