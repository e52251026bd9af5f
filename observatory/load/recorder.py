"""What one load process measured since its last report to the master.

Every Locust process records into a Recorder on the request path and hands the master a
*delta* every report interval: the histograms and counts gathered since the previous
report, after which it starts afresh. Deltas merge exactly on the master, so nothing is
counted twice and a process's memory stays flat however long the run.

The request path only appends each sample to a list (tens of nanoseconds); the samples
are binned into HDR histograms in one vectorised pass when the report is built, which
keeps the generator's own CPU per request close to plain Locust's.

Payload (JSON/msgpack-safe, so it rides Locust's report_to_master message)::

    {"entries": [[series, name, index, count, failures, clamped, hdr_or_empty], ...],
     "errors":  [[name, index, category, count, [sample message], signature], ...]}

Failures are counted per signature (``observatory.signature``: the message with its
variable parts collapsed), with one redacted sample message each, so counts per signature
are exact. A window holds at most ``MAX_SIGNATURES`` distinct ones; the rest are counted
under ``OVERFLOW`` (without a sample).
"""

from __future__ import annotations

from typing import Any

from observatory.domain import Series
from observatory.load.histogram import Histogram
from observatory.load.window import WindowGrid
from observatory.signature import OVERFLOW, signature

MAX_SIGNATURES = 20  # distinct signatures per window, over all names and categories
MAX_CACHED = 512  # raw message -> signature, so a storm of one error is normalised once
LATENCY = Series.LATENCY.value


class _Entry:
    __slots__ = ("failures", "values")

    def __init__(self) -> None:
        self.values: list[float] = []
        self.failures = 0


class _Errors:
    __slots__ = ("count", "sample")

    def __init__(self, sample: str) -> None:
        self.count = 0
        self.sample = sample


class Recorder:
    """Per-process accumulator of (series, name, window) samples and failures."""

    def __init__(self, grid: WindowGrid) -> None:
        self.grid = grid
        self._entries: dict[tuple[str, str, int], _Entry] = {}
        self._errors: dict[tuple[str, int, str, str], _Errors] = {}
        self._distinct: dict[int, int] = {}  # window index -> distinct signatures kept
        self._signatures: dict[str, str] = {}

    def index(self, at: float) -> int:
        """The window of epoch time ``at`` (compute once per request, pass to record)."""
        return self.grid.index(at)

    def _entry(self, series: str, name: str, index: int) -> _Entry:
        key = (series, name, index)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        return entry

    def record(self, series: str, name: str, index: int, value_ms: float) -> None:
        """One sample of ``series`` (ms, or tokens for the tokens series) in window ``index``."""
        key = (series, name, index)  # inlined _entry: this runs several times per request
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        entry.values.append(value_ms)

    def record_many(self, series: str, name: str, index: int, values_ms: list[float]) -> None:
        if values_ms:
            self._entry(series, name, index).values.extend(values_ms)

    def fail(self, name: str, index: int, category: str, message: str) -> None:
        """A failed request: counted in the latency series, kept out of its histogram."""
        self._entry(LATENCY, name, index).failures += 1
        key = (name, index, category, self._signature(message))
        errors = self._errors.get(key)
        if errors is None:
            if self._distinct.get(index, 0) >= MAX_SIGNATURES:
                key = (name, index, category, OVERFLOW)
                errors = self._errors.setdefault(key, _Errors(""))
            else:
                self._distinct[index] = self._distinct.get(index, 0) + 1
                errors = self._errors[key] = _Errors(message)
        errors.count += 1

    def _signature(self, message: str) -> str:
        found = self._signatures.get(message)
        if found is None:
            if len(self._signatures) >= MAX_CACHED:
                self._signatures.clear()
            found = self._signatures[message] = signature(message)
        return found

    def take(self) -> dict[str, Any]:
        """The delta since the last call, as a payload; the recorder starts afresh."""
        entries, self._entries = self._entries, {}
        errors, self._errors = self._errors, {}
        self._distinct = {}
        return {
            "entries": [
                [series, name, index, *_summary(entry)]
                for (series, name, index), entry in entries.items()
            ],
            "errors": [
                [name, index, category, e.count, [e.sample] if e.sample else [], sig]
                for (name, index, category, sig), e in errors.items()
            ],
        }


def _summary(entry: _Entry) -> list[Any]:
    """[count, failures, clamped, encoded histogram or ""] of one entry."""
    count = len(entry.values) + entry.failures
    if not entry.values:
        return [count, entry.failures, 0, ""]
    histogram = Histogram()
    histogram.record_many_ms(entry.values)
    return [count, entry.failures, histogram.clamped, histogram.encode()]
