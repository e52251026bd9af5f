"""The "what changed" card: the handful of headline numbers, side by side with the baseline.

Per request name (the whole run first): p50 and p99 latency and the error rate. For the
gateway: memory level, memory slope, CPU, and throughput (closed model) or late sends (open
model). Each cell is the analysis' own finding: candidate value, baseline value, change,
interval and verdict. The card never computes a statistic of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from observatory.analysis.labels import metric_label, request_name
from observatory.domain import Finding
from observatory.report.findings import MISSING, finding_rows

PER_NAME = ("latency_p50", "latency_p99", "error_rate")
# Without a baseline the error rate still has its absolute ceiling check.
FALLBACK = {"error_rate": ("error_rate", "error_ceiling")}
# Each gateway column: the metrics that can fill it, the preferred first.
GATEWAY = (
    ("gateway memory level", ("memory_level", "memory_peak")),
    ("gateway memory slope", ("memory_slope", "memory_leak")),
    ("gateway CPU", ("cpu",)),
    ("throughput / late sends", ("throughput", "late_rate")),
)
MAX_NAMES = 8  # the card stays one screen; the findings below have every name


@dataclass(frozen=True, slots=True)
class Cell:
    """One headline number: every field a display string."""

    label: str
    candidate: str
    baseline: str
    change: str
    interval: str
    verdict: str  # the finding's verdict, "" when the run has no such finding
    detail: str


@dataclass(frozen=True, slots=True)
class Headline:
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Cell, ...]], ...]  # (request name, one cell per column)
    gateway: tuple[Cell, ...]
    more_names: int  # request names left out of the card

    @property
    def empty(self) -> bool:
        cells = [c for _, row in self.rows for c in row] + list(self.gateway)
        return not any(c.verdict for c in cells)


def headline(findings: Sequence[Finding]) -> Headline:
    by_key = {(f.metric, f.name): f for f in findings}
    names = _names(findings)
    rows = tuple(
        (
            request_name(name),
            tuple(_cell(by_key, FALLBACK.get(m, (m,)), name, metric_label(m)) for m in PER_NAME),
        )
        for name in names[:MAX_NAMES]
    )
    gateway = tuple(_cell(by_key, metrics, "*", label) for label, metrics in GATEWAY)
    columns = tuple(metric_label(m) for m in PER_NAME)
    return Headline(columns, rows, gateway, max(0, len(names) - MAX_NAMES))


def _names(findings: Iterable[Finding]) -> list[str]:
    """The whole run first, then every request name the per-name metrics were compared for."""
    named = sorted({f.name for f in findings if f.metric in PER_NAME and f.name != "*"})
    return ["*", *named]


def _cell(
    by_key: dict[tuple[str, str], Finding], metrics: Sequence[str], name: str, label: str
) -> Cell:
    found = next((by_key[(m, name)] for m in metrics if (m, name) in by_key), None)
    if found is None:
        return Cell(label, MISSING, MISSING, MISSING, MISSING, "", "not measured in this run")
    row = finding_rows([found])[0]
    return Cell(
        label=metric_label(found.metric),
        candidate=row.candidate,
        baseline=row.baseline,
        # memory_leak's delta is the slope itself, not a change from the baseline
        change=MISSING if found.metric == "memory_leak" else row.delta,
        interval=row.interval,
        verdict=row.verdict,
        detail=row.detail,
    )
