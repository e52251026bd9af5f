"""Headline numbers of a run for the index and the release history.

All are steady-state figures (windows after the warm-up), computed the same way for every
run, candidate or baseline, so releases compare on one definition:
- p99: exact, from the merged HDR histograms of every latency window (all request names);
- error rate: failed requests / requests;
- memory slope: the analysis' own finding when the run has one, else Theil-Sen (robust to
  GC spikes) over per-minute medians of the gateway's memory, in MB/hour.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram
from scipy.stats import theilslopes

from observatory.domain import Finding, Series
from observatory.report.findings import memory_slope_finding
from observatory.report.model import RunDataLike, RunSummary

MIN_SLOPE_POINTS = 5  # fewer per-minute points than this give no meaningful slope


def summarise(data: RunDataLike, findings: Iterable[Finding] = ()) -> RunSummary:
    steady = _steady_latency(data)
    slope = _slope_finding(findings)
    return RunSummary(
        p99_ms=_merged_p99(steady["histogram"]) if len(steady) else None,
        error_rate=_error_rate(steady),
        memory_slope_mb_h=_memory_slope(data) if slope is None else slope,
    )


def _steady_latency(data: RunDataLike) -> pd.DataFrame:
    frame = data.windows
    if frame.empty:
        return frame
    mask = (frame["series"] == Series.LATENCY) & (frame["t"] >= data.warmup_s)
    return frame.loc[mask]


def _merged_p99(histograms: pd.Series) -> float | None:
    merged: HdrHistogram | None = None
    for encoded in histograms:
        if not encoded:
            continue
        if merged is None:
            merged = HdrHistogram.decode(encoded)
        else:
            merged.decode_and_add(encoded)
    if merged is None or merged.get_total_count() == 0:
        return None
    return float(merged.get_value_at_percentile(99.0))


def _error_rate(steady: pd.DataFrame) -> float | None:
    total = int(steady["count"].sum()) if len(steady) else 0
    return None if total == 0 else float(steady["failures"].sum()) / total


def _slope_finding(findings: Iterable[Finding]) -> float | None:
    best = memory_slope_finding(findings)
    return None if best is None else best.candidate


def _memory_slope(data: RunDataLike) -> float | None:
    frame = data.resources
    if frame.empty:
        return None
    gateway = frame.loc[(frame["role"] == "gateway") & (frame["t"] >= data.warmup_s)]
    column = "uss_mb" if gateway["uss_mb"].notna().any() else "rss_mb"
    samples = gateway[["t", column]].dropna()
    per_minute = samples.groupby(np.floor(samples["t"] / 60.0))[column].median()
    if len(per_minute) < MIN_SLOPE_POINTS:
        return None
    slope = theilslopes(per_minute.to_numpy(), per_minute.index.to_numpy() * 60.0)[0]
    return float(slope) * 3600.0
