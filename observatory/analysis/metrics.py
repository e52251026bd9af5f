"""Per-window samples of each metric, taken from the steady part of a run.

Steady means: after warm-up, not in a window the load generator flagged as
saturated (it measured itself there) nor in one measured while other processes took
the host's CPU (``RunData.shared``, analysis.shared_host), and, unless asked otherwise,
outside fault phases and the grace period after each (those are judged by
analysis.phases). Error samples take the windows set aside too (``keep_disturbed``): a
busy host slows a gateway, it does not make it fail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from observatory.analysis.bootstrap import Floats, Sample
from observatory.analysis.rundata import RunData
from observatory.domain import Series

LOG_FLOOR_MS = 1e-3  # overhead can be measured as 0 ms; the log needs a floor
PERCENTILE_COLUMNS = {"p50": "p50", "p95": "p95", "p99": "p99"}
OVERALL = "*"


def phase_grace(data: RunData) -> float:
    """How long after a fault phase windows still count as the phase's aftermath."""
    return max(60.0, 6 * data.window_s)


@dataclass(frozen=True)
class RunView:
    """The windows of one run between ``start`` and ``end`` that analysis may use."""

    data: RunData
    groups: dict[tuple[str, str], pd.DataFrame]  # (series, name) -> rows sorted by t
    names: tuple[str, ...]  # request names with a latency series
    steady_windows: int  # distinct window starts in range (before dropping disturbed ones)
    saturated_windows: int  # the load generator measured itself
    shared_windows: int  # busy neighbours on the host
    disturbed_windows: int  # either (the windows set aside)

    def fraction(self, windows: int) -> float:
        return windows / self.steady_windows if self.steady_windows else 0.0

    @property
    def saturated_fraction(self) -> float:
        return self.fraction(self.saturated_windows)

    @property
    def disturbed_fraction(self) -> float:
        return self.fraction(self.disturbed_windows)

    def rows(self, series: str, name: str) -> pd.DataFrame:
        found = self.groups.get((series, name))
        return found if found is not None else self.data.windows.iloc[0:0]

    def has(self, series: str, name: str) -> bool:
        return not self.rows(series, name).empty


def view(
    data: RunData,
    start: float | None = None,
    end: float = math.inf,
    *,
    exclude_phases: bool = True,
    keep_disturbed: bool = False,
) -> RunView:
    """Select the usable windows of ``data`` with ``start <= t < end`` (start: warm-up end).

    ``keep_disturbed``: keep the windows set aside too (still counted as disturbed), for
    what a busy host cannot cause: errors, crashes, memory.
    """
    windows = data.windows
    lower = data.warmup_s if start is None else start
    in_range = (windows["t"] >= lower) & (windows["t"] < end)
    if exclude_phases:
        in_range &= ~in_phases(data, windows["t"].to_numpy(dtype=float))
    selected = windows[in_range]
    saturated_t = set(selected.loc[selected["saturated"].astype(bool), "t"].unique())
    shared_t = set(selected["t"].unique()) & data.shared
    disturbed_t = saturated_t | shared_t
    usable = selected if keep_disturbed else selected[~selected["t"].isin(disturbed_t)]
    usable = usable.sort_values("t", kind="stable")
    groups = {
        (str(series), str(name)): rows
        for (series, name), rows in usable.groupby(["series", "name"], sort=False)
    }
    names = tuple(sorted(str(n) for s, n in groups if s == Series.LATENCY))
    return RunView(
        data=data,
        groups=groups,
        names=names,
        steady_windows=int(selected["t"].nunique()),
        saturated_windows=len(saturated_t),
        shared_windows=len(shared_t),
        disturbed_windows=len(disturbed_t),
    )


def in_phases(data: RunData, t: Floats) -> np.ndarray:
    """Mask of window starts inside a fault phase or its grace period."""
    mask = np.zeros(t.shape, dtype=bool)
    grace = phase_grace(data)
    for phase in data.phases:
        begin = phase.start_offset_s - data.window_s  # a window overlapping the start
        finish = phase.start_offset_s + phase.duration_s + grace
        mask |= (t > begin) & (t < finish)
    return mask


def percentile_sample(run: RunView, series: str, name: str, column: str) -> Sample:
    """log of the per-window percentile: the statistic is a geometric mean over windows."""
    rows = run.rows(series, name)
    values = rows[column].to_numpy(dtype=float)
    keep = (rows["count"].to_numpy() > 0) & np.isfinite(values)
    logs = np.log(np.maximum(values[keep], LOG_FLOOR_MS))
    t = _clock(run, rows["t"].to_numpy(dtype=float)[keep])
    return Sample(num=logs, den=np.ones_like(logs), log=True, t=t)


def _clock(run: RunView, t: Floats) -> Floats | None:
    """Window starts on the wall clock, so that runs measured side by side pair up."""
    start = run.data.started_at
    return None if start is None else t + start


def _per_t(rows: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return rows.groupby("t", sort=True)[columns].sum()


def error_sample(run: RunView, name: str) -> Sample:
    """Failures / requests per window, in percent for display."""
    rows = latency_rows(run, name)
    per_t = _per_t(rows, ["failures", "count"])
    return _ratio(run, per_t["failures"], per_t["count"], scale=100.0)


def category_samples(run: RunView, categories: list[str]) -> dict[str, Sample]:
    """Error rate per category over all names, on the grid of latency windows."""
    totals = _per_t(latency_rows(run, OVERALL), ["count"])["count"]
    errors = run.data.errors
    errors = errors[errors["t"].isin(totals.index)]
    by_category = dict(tuple(errors.groupby("category", sort=True)))
    samples: dict[str, Sample] = {}
    for category in categories:
        rows = by_category.get(category, errors.iloc[0:0])
        counts = rows.groupby("t")["count"].sum().reindex(totals.index, fill_value=0)
        samples[category] = _ratio(run, counts, totals, scale=100.0)
    return samples


def categories(run: RunView) -> set[str]:
    """Error categories seen in the run's usable windows."""
    errors = run.data.errors
    usable = {t for (s, _), rows in run.groups.items() if s == Series.LATENCY for t in rows["t"]}
    return {str(c) for c in errors.loc[errors["t"].isin(usable), "category"].unique()}


def throughput_sample(run: RunView) -> Sample:
    """Requests per second over all names (closed model)."""
    rows = latency_rows(run, OVERALL)
    per_t = rows.groupby("t", sort=True).agg(count=("count", "sum"), length=("length_s", "max"))
    return _ratio(run, per_t["count"], per_t["length"])


def late_sample(run: RunView) -> Sample:
    """(late + dropped sends) / intended sends over all names (open model), in percent."""
    sent = _per_t(latency_rows(run, OVERALL), ["count"])["count"]
    late = _series_counts(run, Series.LATE).reindex(sent.index, fill_value=0)
    dropped = _series_counts(run, Series.DROPPED).reindex(sent.index, fill_value=0)
    return _ratio(run, late + dropped, sent + dropped, scale=100.0)


def _series_counts(run: RunView, series: str) -> pd.Series:
    frames = [rows for (s, _), rows in run.groups.items() if s == series]
    if not frames:
        return pd.Series(dtype=float)
    return pd.concat(frames).groupby("t")["count"].sum()


def latency_rows(run: RunView, name: str) -> pd.DataFrame:
    if name != OVERALL:
        return run.rows(Series.LATENCY, name)
    frames = [run.rows(Series.LATENCY, n) for n in run.names]
    return pd.concat(frames) if frames else run.data.windows.iloc[0:0]


def _ratio(run: RunView, num: pd.Series, den: pd.Series, scale: float = 1.0) -> Sample:
    """Per-window ratio sample; ``num`` and ``den`` are indexed by window start."""
    t = _clock(run, den.index.to_numpy(dtype=float))
    return Sample(num=num.to_numpy(dtype=float), den=den.to_numpy(dtype=float), scale=scale, t=t)
