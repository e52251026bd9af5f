"""Headline numbers of a run for the index and the release history.

All are steady-state figures (windows after the warm-up), computed the same way for every
run, candidate or baseline, so releases compare on one definition:
- p99: exact, from the merged HDR histograms of every latency window (all request names);
- error rate: failed requests / requests;
- memory slope: the analysis' own finding when the run has one, else the analysis' own
  estimator (Theil-Sen over the gateway's memory after warm-up), in MB/hour.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from observatory.analysis.histogram import merged_percentiles
from observatory.analysis.resources import memory_column, memory_series, memory_slope
from observatory.analysis.rundata import RunData
from observatory.domain import Finding, Series
from observatory.report.findings import memory_slope_finding
from observatory.report.model import RunSummary


def summarise(data: RunData, findings: Iterable[Finding] = ()) -> RunSummary:
    steady = _steady_latency(data)
    slope = _slope_finding(findings)
    return RunSummary(
        p99_ms=_merged_p99(steady["histogram"]) if len(steady) else None,
        error_rate=_error_rate(steady),
        memory_slope_mb_h=_memory_slope(data) if slope is None else slope,
    )


def _steady_latency(data: RunData) -> pd.DataFrame:
    frame = data.windows
    if frame.empty:
        return frame
    mask = (frame["series"] == Series.LATENCY) & (frame["t"] >= data.warmup_s)
    return frame.loc[mask]


def _merged_p99(histograms: pd.Series) -> float | None:
    return merged_percentiles(histograms.tolist()).get("p99")


def _error_rate(steady: pd.DataFrame) -> float | None:
    total = int(steady["count"].sum()) if len(steady) else 0
    return None if total == 0 else float(steady["failures"].sum()) / total


def _slope_finding(findings: Iterable[Finding]) -> float | None:
    best = memory_slope_finding(findings)
    return None if best is None else best.candidate


def _memory_slope(data: RunData) -> float | None:
    if data.resources.empty:
        return None
    slope = memory_slope(*memory_series(data, memory_column(data)))
    return slope.mb_per_h if slope.known else None
