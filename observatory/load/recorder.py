"""What one load process measured since its last report to the master.

Every Locust process records into a Recorder on the request path (a dict lookup and an
HDR record: about a microsecond), and hands the master a *delta* every report interval:
the histograms and counts gathered since the previous report, after which it starts
afresh. Deltas merge exactly on the master, so nothing is counted twice and a process's
memory stays flat however long the run.

Payload (JSON/msgpack-safe, so it rides Locust's report_to_master message)::

    {"entries": [[series, name, index, count, failures, clamped, hdr_or_empty], ...],
     "errors":  [[name, index, category, count, [message, ...]], ...]}
"""

from __future__ import annotations

from typing import Any

from observatory.domain import Series
from observatory.load.histogram import Histogram
from observatory.load.window import WindowGrid

MAX_MESSAGES = 3
LATENCY = Series.LATENCY.value


class _Entry:
    __slots__ = ("count", "failures", "histogram")

    def __init__(self) -> None:
        self.count = 0
        self.failures = 0
        self.histogram: Histogram | None = None


class _Errors:
    __slots__ = ("count", "messages")

    def __init__(self) -> None:
        self.count = 0
        self.messages: list[str] = []


class Recorder:
    """Per-process accumulator of (series, name, window) histograms and failures."""

    def __init__(self, grid: WindowGrid) -> None:
        self.grid = grid
        self._entries: dict[tuple[str, str, int], _Entry] = {}
        self._errors: dict[tuple[str, int, str], _Errors] = {}

    def _entry(self, series: str, name: str, at: float) -> _Entry:
        key = (series, name, self.grid.index(at))
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        return entry

    def record(self, series: str, name: str, at: float, value_ms: float) -> None:
        """One sample of ``series`` (ms, or tokens for the tokens series) completed at ``at``."""
        entry = self._entry(series, name, at)
        entry.count += 1
        histogram = entry.histogram
        if histogram is None:
            histogram = entry.histogram = Histogram()
        histogram.record_ms(value_ms)

    def record_many(self, series: str, name: str, at: float, values_ms: list[float]) -> None:
        if not values_ms:
            return
        entry = self._entry(series, name, at)
        entry.count += len(values_ms)
        histogram = entry.histogram
        if histogram is None:
            histogram = entry.histogram = Histogram()
        for value in values_ms:
            histogram.record_ms(value)

    def fail(self, name: str, at: float, category: str, message: str) -> None:
        """A failed request: counted in the latency series, kept out of its histogram."""
        entry = self._entry(LATENCY, name, at)
        entry.count += 1
        entry.failures += 1
        key = (name, self.grid.index(at), category)
        errors = self._errors.get(key)
        if errors is None:
            errors = self._errors[key] = _Errors()
        errors.count += 1
        if len(errors.messages) < MAX_MESSAGES and message not in errors.messages:
            errors.messages.append(message)

    def take(self) -> dict[str, Any]:
        """The delta since the last call, as a payload; the recorder starts afresh."""
        entries, self._entries = self._entries, {}
        errors, self._errors = self._errors, {}
        return {
            "entries": [
                [
                    series,
                    name,
                    index,
                    e.count,
                    e.failures,
                    e.histogram.clamped if e.histogram else 0,
                    e.histogram.encode() if e.histogram else "",
                ]
                for (series, name, index), e in entries.items()
            ],
            "errors": [
                [name, index, category, e.count, e.messages]
                for (name, index, category), e in errors.items()
            ],
        }
