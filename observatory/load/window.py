"""The window grid every load process shares, and one completed window.

Windows are aligned to the run's start time (given to every process), so window ``i``
covers ``[run_start + i * length, run_start + (i + 1) * length)`` in every process and on
every machine. A sample belongs to the window of the moment it completed; completions
after the run's deadline (requests draining at the end) belong to the last window, and the
last window is shorter when the duration is not a multiple of the window length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class WindowGrid:
    run_start: float  # epoch seconds
    length_s: float
    duration_s: float
    last_index: int = field(init=False)

    def __post_init__(self) -> None:
        last = max(0, math.ceil(self.duration_s / self.length_s) - 1)
        object.__setattr__(self, "last_index", last)  # frozen: computed once, used per sample

    def index(self, at: float) -> int:
        """The window of the epoch time ``at``, clamped into the run."""
        index = int((at - self.run_start) // self.length_s)
        if index < 0:
            return 0
        last = self.last_index
        return last if index > last else index

    def start(self, index: int) -> float:
        return self.run_start + index * self.length_s

    def end(self, index: int) -> float:
        return min(self.start(index) + self.length_s, self.run_start + self.duration_s)

    def length(self, index: int) -> float:
        return self.end(index) - self.start(index)

    def start_datetime(self, index: int) -> datetime:
        return datetime.fromtimestamp(self.start(index), tz=UTC)


@dataclass(frozen=True, slots=True)
class WindowEntry:
    """One series of one request name in one completed window (merged over processes)."""

    series: str
    name: str
    count: int
    failures: int
    clamped: int
    histogram: str  # HDR, base64 compressed; successes only for the latency series
    p50: float
    p90: float
    p95: float
    p99: float
    p999: float
    max: float

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series,
            "name": self.name,
            "count": self.count,
            "failures": self.failures,
            "clamped": self.clamped,
            "histogram": self.histogram,
            "p50": self.p50,
            "p90": self.p90,
            "p95": self.p95,
            "p99": self.p99,
            "p999": self.p999,
            "max": self.max,
        }


@dataclass(frozen=True, slots=True)
class ErrorEntry:
    name: str
    category: str
    count: int
    messages: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "category": self.category,
            "count": self.count,
            "messages": list(self.messages),
        }


@dataclass(frozen=True, slots=True)
class CompletedWindow:
    """Everything measured in one window; one line of the spool."""

    index: int
    start: datetime
    length_s: float
    saturation: tuple[str, ...] = ()  # reasons, e.g. ("loadgen_cpu",), empty when fine
    entries: tuple[WindowEntry, ...] = ()
    errors: tuple[ErrorEntry, ...] = ()

    @property
    def saturated(self) -> bool:
        return bool(self.saturation)

    def to_json(self) -> dict[str, Any]:
        return {
            "v": 1,
            "index": self.index,
            "start": self.start.isoformat(),
            "length_s": self.length_s,
            "saturated": self.saturated,
            "saturation": list(self.saturation),
            "windows": [entry.to_json() for entry in self.entries],
            "errors": [error.to_json() for error in self.errors],
        }
