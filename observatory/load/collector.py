"""The master's view: worker deltas merged into windows, handed out once complete.

A window is complete when its end plus a grace period has passed, so the reports still
on their way (workers report every few seconds) are included. Each window is written
exactly once, so every (series, name, window start) key appears once in the spool and
any idempotent ingest (insert-or-ignore, upsert) holds the same data.

Should a report for an already written window arrive anyway (a worker stalled for longer
than the grace, which also flags its windows as saturated), its samples are carried into
the oldest window still open: counts and error totals stay exact, the samples move later
by at most the stall. ``totals.late_samples`` counts them and the live status shows it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from observatory.domain import Series
from observatory.errors import LoadError
from observatory.load.histogram import Histogram, percentile_of
from observatory.load.recorder import MAX_SIGNATURES
from observatory.load.window import CompletedWindow, ErrorEntry, WindowEntry, WindowGrid
from observatory.signature import OVERFLOW

log = logging.getLogger(__name__)
LATENCY = Series.LATENCY.value


@dataclass(slots=True)
class _Merged:
    histogram: Histogram = field(default_factory=Histogram)
    count: int = 0
    failures: int = 0


@dataclass(slots=True)
class _Window:
    entries: dict[tuple[str, str], _Merged] = field(default_factory=dict)
    # (name, category, signature) -> (count, sample message or "")
    errors: dict[tuple[str, str, str], tuple[int, str]] = field(default_factory=dict)
    saturation: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Totals:
    requests: int = 0  # latency samples: successful and failed requests
    failures: int = 0
    late_samples: int = 0  # carried into a later window (see module docstring)
    lost_samples: int = 0  # arrived after the last window was written
    windows_written: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Requests, failures and p99 (over all names) of one window, for the live status."""

    requests: int
    failures: int
    p99_ms: float
    length_s: float
    saturated: bool


class Collector:
    """Merges worker deltas per window; ``due`` returns the windows ready to be written."""

    def __init__(self, grid: WindowGrid, grace_s: float) -> None:
        self.grid = grid
        self.grace_s = grace_s
        self.totals = Totals()
        self._open: dict[int, _Window] = {}
        self._next = 0  # lowest index not yet written
        self._last: CompletedWindow | None = None

    def merge(self, payload: Mapping[str, Any]) -> None:
        """Add one worker delta (see recorder.Recorder.take)."""
        try:
            for series, name, index, count, failures, clamped, encoded in payload["entries"]:
                self._merge_entry(str(series), str(name), int(index), int(count),
                                  int(failures), str(encoded), int(clamped))  # fmt: skip
            for name, index, category, count, messages, sig in payload["errors"]:
                sample = str(messages[0]) if messages else ""
                self._merge_errors(str(name), int(index), str(category), int(count), sample,
                                   str(sig))  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadError(f"malformed load report from a worker: {exc!r}") from None

    def mark_saturated(self, since: float, until: float, reason: str) -> None:
        """Flag every still-open window overlapping [since, until] with ``reason``."""
        first = max(self.grid.index(since), self._next)
        for index in range(first, self.grid.index(until) + 1):
            self._open.setdefault(index, _Window()).saturation.add(reason)

    def due(self, now: float) -> list[CompletedWindow]:
        """Windows whose end + grace has passed, in order."""
        out = []
        grid = self.grid
        while self._next <= grid.last_index and grid.end(self._next) + self.grace_s <= now:
            out.append(self._complete())
        return out

    def flush_all(self) -> list[CompletedWindow]:
        """Every window not yet written, up to the last one with data (end of the run)."""
        out = []
        last = max([self._next - 1, *self._open])
        while self._next <= last:
            out.append(self._complete())
        return out

    def latest(self, now: float) -> Snapshot | None:
        """Latency of the newest window that has ended (provisional), for the live status."""
        last = self.grid.last_index
        index = last if now >= self.grid.end(last) else self.grid.index(now) - 1
        window = self._open.get(index)
        if index >= self._next and window is not None:
            latency = [e for (series, _), e in window.entries.items() if series == LATENCY]
            p99 = percentile_of([e.histogram for e in latency], 99.0)
            return Snapshot(
                requests=sum(e.count for e in latency),
                failures=sum(e.failures for e in latency),
                p99_ms=p99,
                length_s=self.grid.length(index),
                saturated=bool(window.saturation),
            )
        return None if self._last is None else _snapshot(self._last)

    # internals

    def _target(self, index: int, count: int) -> _Window | None:
        """The open window for samples of ``index`` (a later one if it was written)."""
        if index >= self._next:
            return self._open.setdefault(index, _Window())
        if self._next > self.grid.last_index:
            self.totals.lost_samples += count
            log.warning("%d samples arrived after the last window was written", count)
            return None
        self.totals.late_samples += count
        return self._open.setdefault(self._next, _Window())

    def _merge_entry(self, series: str, name: str, index: int, count: int, failures: int,
                     encoded: str, clamped: int) -> None:  # fmt: skip
        window = self._target(index, count)
        if window is None:
            return
        merged = window.entries.get((series, name))
        if merged is None:
            merged = window.entries[(series, name)] = _Merged()
        merged.count += count
        merged.failures += failures
        if encoded:
            merged.histogram.merge_encoded(encoded, clamped)
        if series == LATENCY:
            self.totals.requests += count
            self.totals.failures += failures

    def _merge_errors(self, name: str, index: int, category: str, count: int, sample: str,
                      sig: str) -> None:  # fmt: skip
        """Counts per signature; past MAX_SIGNATURES in a window, under OVERFLOW."""
        window = self._target(index, 0)
        if window is None:
            return
        key = (name, category, sig)
        if key not in window.errors and len(window.errors) >= MAX_SIGNATURES:
            key, sample = (name, category, OVERFLOW), ""
        total, kept = window.errors.get(key, (0, sample))
        window.errors[key] = (total + count, kept or sample)

    def _complete(self) -> CompletedWindow:
        index = self._next
        self._next += 1
        completed = self._build(index, self._open.pop(index, _Window()))
        self._last = completed
        self.totals.windows_written += 1
        return completed

    def _build(self, index: int, window: _Window) -> CompletedWindow:
        entries = tuple(
            _entry(series, name, merged)
            for (series, name), merged in sorted(window.entries.items())
        )
        errors = tuple(
            ErrorEntry(name, category, count, (sample,) if sample else ())
            for (name, category, _), (count, sample) in sorted(window.errors.items())
        )
        return CompletedWindow(
            index=index,
            start=self.grid.start_datetime(index),
            length_s=self.grid.length(index),
            saturation=tuple(sorted(window.saturation)),
            entries=entries,
            errors=errors,
        )


def _snapshot(window: CompletedWindow) -> Snapshot:
    latency = [e for e in window.entries if e.series == LATENCY]
    return Snapshot(
        requests=sum(e.count for e in latency),
        failures=sum(e.failures for e in latency),
        p99_ms=max((e.p99 for e in latency), default=0.0),  # the worst name's p99
        length_s=window.length_s,
        saturated=window.saturated,
    )


def _entry(series: str, name: str, merged: _Merged) -> WindowEntry:
    pct = merged.histogram.percentiles_ms()
    return WindowEntry(
        series=series,
        name=name,
        count=merged.count,
        failures=merged.failures,
        clamped=merged.histogram.clamped,
        histogram=merged.histogram.encode(),
        p50=pct[50.0],
        p90=pct[90.0],
        p95=pct[95.0],
        p99=pct[99.0],
        p999=pct[99.9],
        max=merged.histogram.max_ms(),
    )
