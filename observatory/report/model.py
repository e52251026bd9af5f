"""What a report is made of: one ``ReportInput`` per run page, one ``IndexRow`` per index line.

The report never analyses: it shows what the analysis decided next to the measured series
(``analysis.RunData``). ``AnalysisLike`` is what the page needs of a decision: the analysis'
own ``Analysis`` fits, and so does ``StoredAnalysis``, the verdict and findings read back
from the store (a run that has no verdict yet has ``verdict=None``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from observatory.analysis.changepoint import ChangePoint
from observatory.analysis.rundata import RunData
from observatory.domain import Finding, Verdict


class AnalysisLike(Protocol):
    """The analysis of one run as the report needs it."""

    @property
    def verdict(self) -> Verdict | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def change_points(self) -> Sequence[ChangePoint]: ...
    @property
    def saturated(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class StoredAnalysis:
    """The analysis as the store keeps it: the run's verdict and findings."""

    verdict: Verdict | None
    reason: str
    findings: tuple[Finding, ...]
    change_points: tuple[ChangePoint, ...]
    saturated: bool


@dataclass(frozen=True, slots=True)
class BuildInfo:
    name: str
    gateway: str
    version: str
    channel: str
    provision_kind: str
    created_at: datetime | None = None
    promoted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    id: int
    scenario: str
    status: str
    verdict: str | None
    end_reason: str | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float
    warmup_s: float
    window_s: float
    role: str = "candidate"
    profile: Mapping[str, Any] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BaselineInfo:
    run_id: int
    build: BuildInfo
    started_at: datetime | None
    ended_at: datetime | None
    environment: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorGroup:
    """All failures of one category for one request name, with a few sample messages."""

    name: str
    category: str
    count: int
    first_t: float | None
    last_t: float | None
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportInput:
    """Everything one run page shows. Strings are untrusted: the templates escape them."""

    run: RunInfo
    build: BuildInfo
    analysis: AnalysisLike
    candidate: RunData
    baseline: BaselineInfo | None = None
    baseline_data: RunData | None = None
    errors: tuple[ErrorGroup, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    report_url_prefix: str = ""


@dataclass(frozen=True, slots=True)
class RunSummary:
    """Headline numbers of one run for the index and the release history (steady state)."""

    p99_ms: float | None
    error_rate: float | None
    memory_slope_mb_h: float | None


@dataclass(frozen=True, slots=True)
class IndexRow:
    """One run in the static index."""

    run_id: int
    scenario: str
    gateway: str
    build: str
    version: str
    channel: str
    role: str
    status: str
    verdict: str | None
    started_at: datetime | None
    duration_s: float
    summary: RunSummary
    baseline_run_id: int | None = None
    tags: tuple[str, ...] = ()
    reason: str = ""  # why the verdict (or why the run ended)
