"""Domain vocabulary: enums and frozen dataclasses shared by every stage. No I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

MAX_ID = 2**63 - 1  # the largest row id SQLite and Postgres store


class ExitCode(enum.IntEnum):
    """One exit-code convention for every command."""

    OK = 0
    REGRESSION = 1
    BAD_INPUT = 2
    INCONCLUSIVE = 3
    INTERNAL = 4


class RunStatus(enum.StrEnum):
    """Lifecycle of a run (what the observatory is doing with it)."""

    QUEUED = "queued"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    ANALYSING = "analysing"
    DONE = "done"
    ERROR = "error"
    ABORTED = "aborted"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = {RunStatus.DONE, RunStatus.ERROR, RunStatus.ABORTED, RunStatus.INTERRUPTED}
ACTIVE_STATUSES = (RunStatus.PROVISIONING, RunStatus.RUNNING, RunStatus.ANALYSING)


class Verdict(enum.StrEnum):
    """Outcome of a run (what the candidate did). A gateway crash is a regression."""

    PASS = "pass"  # noqa: S105 - not a password
    REGRESSION = "regression"
    INCONCLUSIVE = "inconclusive"
    NO_BASELINE = "no_baseline"

    @property
    def exit_code(self) -> ExitCode:
        return {
            Verdict.PASS: ExitCode.OK,
            Verdict.REGRESSION: ExitCode.REGRESSION,
            Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
            Verdict.NO_BASELINE: ExitCode.INCONCLUSIVE,
        }[self]


class FindingVerdict(enum.StrEnum):
    """Verdict on one metric of one request name."""

    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    INCONCLUSIVE = "inconclusive"


class Channel(enum.StrEnum):
    STABLE = "stable"
    CANDIDATE = "candidate"


class TriggerSource(enum.StrEnum):
    CLI = "cli"
    API = "api"
    SCHEDULE = "schedule"
    CI = "ci"


class ProvisionKind(enum.StrEnum):
    PIP = "pip"
    COMMAND = "command"
    URL = "url"


class AlertState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    LOGGED = "logged"  # no Slack configured: written to the log only


class Series(enum.StrEnum):
    """Names of the time-series a run records per window and request name."""

    LATENCY = "latency"  # end-to-end, ms (open model: from the intended send time)
    TTFT = "ttft"  # time to first content chunk, ms
    INTER_CHUNK = "inter_chunk"  # every gap between content chunks, ms
    OVERHEAD_HEADER = "overhead_header"  # gateway's self-reported overhead, ms
    OVERHEAD = "overhead"  # end-to-end minus the upstream's service time, ms
    LATE = "late"  # open model: how late a send started, ms (count = late sends)
    DROPPED = "dropped"  # open model: sends never made (count only)
    TOKENS = "tokens"  # completion tokens per request
    ABANDONED = "abandoned"  # streams the client closed after the chunks it wanted, ms
    CANCELLED = "cancelled"  # requests the client gave up at its own timeout, ms


@dataclass(frozen=True, slots=True)
class Window:
    """One window of one series for one request name, merged over all load processes."""

    series: str
    name: str
    start: datetime
    length_s: float
    count: int
    failures: int
    histogram: str  # HDR histogram, base64 compressed (hdrhistogram encoding)
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float
    saturated: bool = False


@dataclass(frozen=True, slots=True)
class ErrorSample:
    """Failures of one category in one window, with a few redacted messages."""

    name: str
    window_start: datetime
    category: str  # e.g. "http_500", "timeout", "connection", "bad_body"
    count: int
    messages: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceSample:
    """One sample of a process tree. ``None`` means unavailable, never invented."""

    at: datetime
    role: str  # "gateway" | "loadgen" | "upstream" | "neighbours" (CPU only)
    rss_mb: float | None
    uss_mb: float | None
    cpu_percent: float | None
    threads: int | None
    fds: int | None
    connections: int | None
    processes: int | None
    log_bytes: int | None = None  # bytes the tree wrote to its output since the last sample


@dataclass(frozen=True, slots=True)
class FaultPhase:
    """A fault injected from ``start_offset_s`` for ``duration_s`` seconds."""

    fault: str
    start_offset_s: float
    duration_s: float
    params: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Finding:
    """One compared or checked metric with its evidence."""

    metric: str  # e.g. "latency_p99", "error_rate", "memory_slope"
    name: str  # request name, or "*" for the whole run
    verdict: FindingVerdict
    baseline: float | None
    candidate: float | None
    delta: float | None  # relative change (candidate / baseline - 1) unless unit says otherwise
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    threshold: float | None
    unit: str = ""
    detail: str = ""
    at_s: float | None = None  # onset offset in the run, for change points
