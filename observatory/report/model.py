"""What a report is made of: one ``ReportInput`` per run page, one ``IndexRow`` per index line.

The report never analyses: it shows what the analysis decided (``AnalysisLike``) next to the
measured series (``RunDataLike``). Both are Protocols so that the analysis package's own
classes and the findings read back from the store fit the same slot.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from observatory.domain import FaultPhase, Finding, Verdict


class ChangePointLike(Protocol):
    """Where a series changed level: ``series`` is e.g. "error_rate" or "latency_p99"."""

    @property
    def series(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def at_s(self) -> float: ...
    @property
    def before(self) -> float: ...
    @property
    def after(self) -> float: ...
    @property
    def unit(self) -> str: ...


class AnalysisLike(Protocol):
    """The analysis of one run as the report needs it."""

    @property
    def verdict(self) -> Verdict | None: ...
    @property
    def reason(self) -> str: ...
    @property
    def findings(self) -> Sequence[Finding]: ...
    @property
    def change_points(self) -> Sequence[ChangePointLike]: ...
    @property
    def saturated(self) -> bool: ...


class RunDataLike(Protocol):
    """The measured series of one run; ``t`` columns are seconds since the run started."""

    @property
    def windows(self) -> pd.DataFrame: ...
    @property
    def errors(self) -> pd.DataFrame: ...
    @property
    def resources(self) -> pd.DataFrame: ...
    @property
    def phases(self) -> tuple[FaultPhase, ...]: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def warmup_s(self) -> float: ...
    @property
    def window_s(self) -> float: ...


@dataclass(frozen=True, slots=True)
class StoredRunData:
    """The measured series of a run as read back from the store."""

    windows: pd.DataFrame
    errors: pd.DataFrame
    resources: pd.DataFrame
    phases: tuple[FaultPhase, ...]
    duration_s: float
    warmup_s: float
    window_s: float


@dataclass(frozen=True, slots=True)
class StoredChangePoint:
    """A change point rebuilt from a stored finding that carries an onset (``at_s``)."""

    series: str
    name: str
    at_s: float
    before: float
    after: float
    unit: str = ""


@dataclass(frozen=True, slots=True)
class StoredAnalysis:
    """The analysis as the store keeps it: the run's verdict and findings."""

    verdict: Verdict | None
    reason: str
    findings: tuple[Finding, ...]
    change_points: tuple[StoredChangePoint, ...]
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
    candidate: RunDataLike
    baseline: BaselineInfo | None = None
    baseline_data: RunDataLike | None = None
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
