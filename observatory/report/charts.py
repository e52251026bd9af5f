"""The charts of a run page as plain data (drawn in the browser by reports/static/charts.js).

Every chart shares one x axis (seconds since its run started) between candidate and
baseline, shades the warm-up and the fault phases, and marks the change points the
analysis found on its series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from observatory.analysis.changepoint import ChangePoint
from observatory.analysis.resources import memory_column
from observatory.analysis.rundata import RunData
from observatory.domain import FaultPhase, Series
from observatory.neighbours import NEIGHBOURS
from observatory.report import downsample
from observatory.report.findings import memory_slope_finding
from observatory.report.model import ReportInput

SET_ASIDE = "set aside: load generator or host busy"
CANDIDATE_COLORS = ("#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e")
BASELINE_COLOR = "#7f7f7f"
# Baseline percentiles in greys, darker for the higher percentile, so two dashed lines differ.
BASELINE_SHADES = {"p50": "#a6a6a6", "p99": "#555555"}
PERCENTILES = ("p50", "p90", "p99")
BASELINE_PERCENTILES = ("p50", "p99")
MEAN = "mean of the samples in it"
PERCENTILE_SECTIONS = (
    (Series.LATENCY, "Latency", "End-to-end latency"),
    (Series.TTFT, "Streaming: time to first token", "Time to first token"),
    (Series.INTER_CHUNK, "Streaming: inter-chunk gaps", "Inter-chunk gap"),
    (Series.OVERHEAD, "Gateway overhead", "Overhead (end-to-end minus upstream)"),
    (Series.OVERHEAD_HEADER, "Gateway overhead", "Overhead (gateway header)"),
)


@dataclass(frozen=True, slots=True)
class Line:
    label: str
    values: list[float | None]
    color: str
    dash: bool = False
    baseline: bool = False


@dataclass(frozen=True, slots=True)
class Mark:
    """A vertical line: a change point."""

    at: float
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded span: the warm-up, a fault phase or windows the analysis set aside."""

    start: float
    end: float
    label: str
    kind: str  # "warmup" | "fault" | "disturbed"


@dataclass(frozen=True, slots=True)
class Chart:
    id: str
    section: str
    title: str
    unit: str
    x: list[float]
    lines: list[Line]
    marks: list[Mark] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Context:
    """What every chart of one page shares."""

    step: float
    window_s: float
    bands: list[Band]
    change_points: Sequence[ChangePoint]

    def note(self, how: str) -> str:
        """How a point was made when several windows share it (display only)."""
        if self.step <= self.window_s:
            return ""
        return f"one point per {self.step:g} s: {how}"


def build_charts(inp: ReportInput, max_points: int = downsample.DEFAULT_MAX_POINTS) -> list[Chart]:
    """All charts of the page, in display order; charts without any data are left out."""
    ctx = _context(inp, max_points)
    charts = _percentile_charts(inp, ctx, Series.LATENCY)
    charts += [_throughput_chart(inp, ctx), _error_chart(inp, ctx)]
    charts += [_memory_chart(inp, ctx), _cpu_chart(inp, ctx)]
    for series, *_ in PERCENTILE_SECTIONS[1:]:
        charts += _percentile_charts(inp, ctx, series)
    return [chart for chart in charts if _has_points(chart)]


def _context(inp: ReportInput, max_points: int) -> _Context:
    data = inp.candidate
    span = max(data.duration_s, _span(data), _span(inp.baseline_data))
    step = downsample.display_step(span, data.window_s, max_points)
    return _Context(step, data.window_s, _bands(data), inp.analysis.change_points)


def _span(data: RunData | None) -> float:
    if data is None:
        return 0.0
    ends = [float(frame["t"].max()) for frame in (data.windows, data.resources) if len(frame)]
    return max([data.duration_s, *ends])


def _bands(data: RunData) -> list[Band]:
    bands = [Band(0.0, data.warmup_s, "warm-up", "warmup")] if data.warmup_s > 0 else []
    return bands + [_phase_band(phase) for phase in data.phases] + _disturbed_bands(data)


def _disturbed_bands(data: RunData) -> list[Band]:
    """Runs of windows the analysis set aside: saturated load generator or busy neighbours."""
    windows = data.windows
    saturated = windows.loc[windows["saturated"].astype(bool), "t"]
    starts = sorted({float(t) for t in saturated} | data.shared)
    bands: list[Band] = []
    for start in starts:
        if bands and start <= bands[-1].end:
            bands[-1] = Band(bands[-1].start, start + data.window_s, SET_ASIDE, "disturbed")
        else:
            bands.append(Band(start, start + data.window_s, SET_ASIDE, "disturbed"))
    return bands


def _phase_band(phase: FaultPhase) -> Band:
    end = phase.start_offset_s + phase.duration_s
    return Band(phase.start_offset_s, end, f"fault: {phase.fault}", "fault")


def _has_points(chart: Chart) -> bool:
    return any(value is not None for line in chart.lines for value in line.values)


def _align(frames: list[pd.DataFrame | pd.Series]) -> pd.Index:
    """The union of the buckets of all frames, sorted: the chart's x values."""
    index = pd.Index([], dtype=float)
    for frame in frames:
        index = index.union(pd.Index(frame.index, dtype=float))
    return index.sort_values()


def _series_windows(data: RunData | None, series: str, name: str | None) -> pd.DataFrame:
    if data is None or data.windows.empty:
        return pd.DataFrame(columns=["t", "name", "count", "failures", "length_s"])
    frame = data.windows
    mask = frame["series"] == series
    if name is not None:
        mask &= frame["name"] == name
    return frame.loc[mask]


def _names(data: RunData, series: str) -> list[str]:
    frame = data.windows
    if frame.empty:
        return []
    return sorted(frame.loc[frame["series"] == series, "name"].unique().tolist())


def _percentile_charts(inp: ReportInput, ctx: _Context, series: str) -> list[Chart]:
    section, title = next((s, t) for key, s, t in PERCENTILE_SECTIONS if key == series)
    return [
        _percentile_chart(inp, ctx, series, name, section, title)
        for name in _names(inp.candidate, series)
    ]


def _percentile_chart(
    inp: ReportInput, ctx: _Context, series: str, name: str, section: str, title: str
) -> Chart:
    cols = list(PERCENTILES)
    cand = downsample.worst_per_bucket(_series_windows(inp.candidate, series, name), cols, ctx.step)
    base = downsample.worst_per_bucket(
        _series_windows(inp.baseline_data, series, name), list(BASELINE_PERCENTILES), ctx.step
    )
    x = _align([cand, base])
    lines = [
        Line(f"{p}", _values(cand, p, x), CANDIDATE_COLORS[i]) for i, p in enumerate(PERCENTILES)
    ]
    lines += [
        _baseline_line(f"baseline {p}", _values(base, p, x), BASELINE_SHADES[p])
        for p in BASELINE_PERCENTILES
    ]
    return Chart(
        id=f"{series}-{name}",
        section=section,
        title=f"{title}: {name}",
        unit="ms",
        x=downsample.axis(x),
        lines=_present(lines),
        marks=_marks(ctx.change_points, (series,), name),
        bands=ctx.bands,
        note=ctx.note(f"the worst {ctx.window_s:g} s window in it"),
    )


def _baseline_line(label: str, values: list[float | None], color: str = BASELINE_COLOR) -> Line:
    return Line(label, values, color, dash=True, baseline=True)


def _present(lines: list[Line]) -> list[Line]:
    """Baseline lines only when there is a baseline with data for them."""
    return [ln for ln in lines if not ln.baseline or any(v is not None for v in ln.values)]


def _values(frame: pd.DataFrame | pd.Series, column: str | None, x: pd.Index) -> list[float | None]:
    if len(frame) == 0:
        return [None] * len(x)
    series = frame if isinstance(frame, pd.Series) else frame.get(column)
    if series is None:
        return [None] * len(x)
    return downsample.compact(series.reindex(x).to_numpy(dtype=float))


def _rates(data: RunData | None, series: str, step: float) -> pd.DataFrame:
    """Per bucket: requests per second and error rate (%), over all request names."""
    frame = _series_windows(data, series, None)
    if frame.empty:
        return pd.DataFrame(columns=["rate", "error_pct"], dtype=float)
    per_window = frame.groupby("t").agg(
        count=("count", "sum"), failures=("failures", "sum"), length=("length_s", "max")
    )
    columns = ["count", "failures", "length"]
    sums = downsample.sums_per_bucket(per_window.reset_index(), columns, step)
    rate = sums["count"] / sums["length"]
    error_pct = 100.0 * sums["failures"] / sums["count"].where(sums["count"] > 0)
    return pd.DataFrame({"rate": rate, "error_pct": error_pct})


def _throughput_chart(inp: ReportInput, ctx: _Context) -> Chart:
    cand = _rates(inp.candidate, Series.LATENCY, ctx.step)
    base = _rates(inp.baseline_data, Series.LATENCY, ctx.step)
    late = _rates(inp.candidate, Series.LATE, ctx.step)
    dropped = _rates(inp.candidate, Series.DROPPED, ctx.step)
    x = _align([cand, base, late, dropped])
    lines = [Line("requests/s", _values(cand, "rate", x), CANDIDATE_COLORS[0])]
    if len(late):
        lines.append(Line("late sends/s", _values(late, "rate", x), CANDIDATE_COLORS[4]))
    if len(dropped):
        lines.append(Line("dropped sends/s", _values(dropped, "rate", x), CANDIDATE_COLORS[2]))
    lines.append(_baseline_line("baseline requests/s", _values(base, "rate", x)))
    return _run_chart("throughput", "Throughput and errors", "Throughput", "req/s", x, lines, ctx)


def _error_chart(inp: ReportInput, ctx: _Context) -> Chart:
    cand = _rates(inp.candidate, Series.LATENCY, ctx.step)
    base = _rates(inp.baseline_data, Series.LATENCY, ctx.step)
    x = _align([cand, base])
    lines = [
        Line("error rate", _values(cand, "error_pct", x), CANDIDATE_COLORS[2]),
        _baseline_line("baseline error rate", _values(base, "error_pct", x)),
    ]
    topics = ("error_rate", "errors")
    return _run_chart("errors", "Throughput and errors", "Error rate", "%", x, lines, ctx, topics)


def _run_chart(
    chart_id: str,
    section: str,
    title: str,
    unit: str,
    x: pd.Index,
    lines: list[Line],
    ctx: _Context,
    topics: tuple[str, ...] = (),
    how: str = "rates over all its windows",
) -> Chart:
    return Chart(
        id=chart_id,
        section=section,
        title=title,
        unit=unit,
        x=downsample.axis(x),
        lines=_present(lines),
        marks=_marks(ctx.change_points, topics or (chart_id,), None),
        bands=ctx.bands,
        note=ctx.note(how),
    )


def _resources(data: RunData | None, role: str, step: float) -> pd.DataFrame:
    cols = ["rss_mb", "uss_mb", "cpu_percent"]
    if data is None or data.resources.empty:
        return pd.DataFrame(columns=cols, dtype=float)
    frame = data.resources.loc[data.resources["role"] == role]
    return downsample.mean_per_bucket(frame[["t", *cols]].astype(float), cols, step)


def _memory_chart(inp: ReportInput, ctx: _Context) -> Chart:
    gw = _resources(inp.candidate, "gateway", ctx.step)
    lg = _resources(inp.candidate, "loadgen", ctx.step)
    base = _resources(inp.baseline_data, "gateway", ctx.step)
    x = _align([gw, lg, base])
    # the analysis' choice: USS when every run sampled it (it excludes shared pages), else RSS
    column = memory_column(*[d for d in (inp.candidate, inp.baseline_data) if d is not None])
    lines = [
        Line("gateway RSS", _values(gw, "rss_mb", x), CANDIDATE_COLORS[0]),
        Line("gateway USS", _values(gw, "uss_mb", x), CANDIDATE_COLORS[3]),
        Line("load generator RSS", _values(lg, "rss_mb", x), CANDIDATE_COLORS[4]),
        _baseline_line(f"baseline gateway {column[:3].upper()}", _values(base, column, x)),
    ]
    slope = _slope_line(inp, x, column)
    topics = ("memory",)
    return _run_chart("memory", "Resources", "Memory", "MB", x, lines + slope, ctx, topics, MEAN)


def _slope_line(inp: ReportInput, x: pd.Index, column: str) -> list[Line]:
    """The analysis' memory slope drawn through the samples after warm-up."""
    finding = memory_slope_finding(inp.analysis.findings)
    if finding is None or finding.candidate is None or len(x) == 0:
        return []
    data = inp.candidate
    frame = data.resources
    mask = (frame["role"] == "gateway") & (frame["t"] >= data.warmup_s) if len(frame) else None
    samples = frame.loc[mask, ["t", column]].dropna() if mask is not None else frame
    if samples.empty:
        return []
    slope_per_s = finding.candidate / 3600.0
    # Theil-Sen's intercept is the median of y - slope * t; any line through the median
    # residual is the same line the analysis fitted.
    intercept = float(np.median(samples[column] - slope_per_s * samples["t"]))
    xs = x.to_numpy(dtype=float)
    fitted = np.where(xs >= data.warmup_s, intercept + slope_per_s * xs, np.nan)
    label = f"fitted slope {finding.candidate:+.3g} MB/h"
    return [Line(label, downsample.compact(fitted), "#000000", dash=True)]


def _cpu_chart(inp: ReportInput, ctx: _Context) -> Chart:
    gw = _resources(inp.candidate, "gateway", ctx.step)
    lg = _resources(inp.candidate, "loadgen", ctx.step)
    nb = _resources(inp.candidate, NEIGHBOURS, ctx.step)
    base = _resources(inp.baseline_data, "gateway", ctx.step)
    x = _align([gw, lg, nb, base])
    lines = [
        Line("gateway CPU", _values(gw, "cpu_percent", x), CANDIDATE_COLORS[0]),
        Line("load generator CPU", _values(lg, "cpu_percent", x), CANDIDATE_COLORS[4]),
        Line("other processes on the host", _values(nb, "cpu_percent", x), "#7f7f7f"),
        _baseline_line("baseline gateway CPU", _values(base, "cpu_percent", x)),
    ]
    return _run_chart("cpu", "Resources", "CPU", "%", x, lines, ctx, how=MEAN)


def _marks(
    change_points: Sequence[ChangePoint], topics: tuple[str, ...], name: str | None
) -> list[Mark]:
    return [
        Mark(float(cp.at_s), _mark_label(cp)) for cp in change_points if _matches(cp, topics, name)
    ]


def _matches(cp: ChangePoint, topics: tuple[str, ...], name: str | None) -> bool:
    """A change point of "latency_p99" on "chat" belongs to the latency chart of "chat"."""
    on_topic = any(cp.series == t or cp.series.startswith(f"{t}_") for t in topics)
    if not on_topic:
        return False
    return name is None or cp.name in (name, "*", "")


def _mark_label(cp: ChangePoint) -> str:
    unit = f" {cp.unit}" if cp.unit else ""
    where = "" if cp.name in ("*", "") else f" ({cp.name})"
    minutes = cp.at_s / 60.0
    return f"{cp.series}{where}: {cp.before:.3g} → {cp.after:.3g}{unit} at {minutes:.1f} min"
