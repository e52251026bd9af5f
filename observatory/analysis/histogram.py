"""Whole-run percentiles from the windows' HDR histograms (exact merge, no averaging).

Percentiles of windows cannot be averaged into a run's percentile; histograms can
be added. Values are recorded in microseconds and reported in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from hdrh.histogram import HdrHistogram

from observatory.errors import InputError

LOWEST_US = 1
HIGHEST_US = 3_600_000_000  # one hour: nothing a gateway answers takes longer
DIGITS = 3
PERCENTILES: Mapping[str, float] = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}


def merged_percentiles(encoded: Iterable[str]) -> dict[str, float]:
    """p50/p95/p99/p999 in ms of the sum of the given histograms; {} when none is present."""
    total = HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)
    added = 0
    for index, blob in enumerate(encoded):
        if not blob:
            continue
        try:
            total.decode_and_add(blob)
        except Exception as exc:  # hdrh raises bare ValueError/zlib.error/struct.error
            raise InputError(
                f"window histogram #{index} is not a valid HDR histogram: {exc}"
            ) from None
        added += 1
    if added == 0 or total.get_total_count() == 0:
        return {}
    return {key: total.get_value_at_percentile(q) / 1000.0 for key, q in PERCENTILES.items()}


def describe(base: Mapping[str, float], cand: Mapping[str, float], column: str) -> str:
    """'whole-run p99 118 -> 131 ms' when both runs have histograms, else ''."""
    b, c = base.get(column, math.nan), cand.get(column, math.nan)
    if math.isnan(b) or math.isnan(c):
        return ""
    return f"whole-run {column} from merged histograms {b:.4g} -> {c:.4g} ms"
