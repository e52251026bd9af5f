"""The master's view: worker deltas merged into windows, handed out once complete.

A window is complete when its end plus a grace period has passed, so reports that were
still in flight (workers report every few seconds) are included. Should a report for an
already written window arrive anyway (a worker stalled past the grace), the window is
written again, cumulatively, with a higher revision; a consumer that upserts by
(series, name, window start) then holds the full window. Windows older than
``keep_written`` windows are no longer revised: such late samples are counted in
``late_samples`` and reported in the status, never silently merged elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from observatory.domain import Series
from observatory.errors import LoadError
from observatory.load.histogram import Histogram
from observatory.load.recorder import MAX_MESSAGES
from observatory.load.window import CompletedWindow, ErrorEntry, WindowEntry, WindowGrid

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
    errors: dict[tuple[str, str], tuple[int, list[str]]] = field(default_factory=dict)
    saturation: set[str] = field(default_factory=set)
    revision: int = 0


@dataclass(slots=True)
class Totals:
    requests: int = 0
    failures: int = 0
    late_samples: int = 0
    windows_written: int = 0


class Collector:
    """Merges worker deltas per window; ``due`` returns the windows ready to be written."""

    def __init__(self, grid: WindowGrid, grace_s: float, keep_written: int = 3) -> None:
        self.grid = grid
        self.grace_s = grace_s
        self.keep_written = keep_written
        self.totals = Totals()
        self._open: dict[int, _Window] = {}
        self._written: dict[int, CompletedWindow] = {}
        self._dirty: set[int] = set()
        self._next = 0  # lowest index not yet written

    def merge(self, payload: Mapping[str, Any]) -> None:
        """Add one worker delta (see recorder.Recorder.take)."""
        try:
            for series, name, index, count, failures, clamped, encoded in payload["entries"]:
                self._merge_entry(
                    str(series), str(name), int(index), count, failures, clamped, encoded
                )
            for name, index, category, count, messages in payload["errors"]:
                self._merge_errors(str(name), int(index), str(category), count, messages)
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadError(f"malformed load report from a worker: {exc!r}") from None

    def mark_saturated(self, since: float, until: float, reason: str) -> None:
        """Flag every window overlapping [since, until] with ``reason``."""
        for index in range(self.grid.index(since), self.grid.index(until) + 1):
            written = self._written.get(index)
            if index not in self._open and written is not None and reason in written.saturation:
                continue
            window = self._window(index)
            if window is not None and reason not in window.saturation:
                window.saturation.add(reason)

    def due(self, now: float) -> list[CompletedWindow]:
        """Windows whose end + grace has passed (in order), and revised late windows."""
        out = [self._complete(i) for i in sorted(self._dirty)]
        self._dirty.clear()
        grid = self.grid
        while self._next <= grid.last_index and grid.end(self._next) + self.grace_s <= now:
            out.append(self._complete(self._next))
            self._next += 1
        self._forget_old()
        return out

    def flush_all(self) -> list[CompletedWindow]:
        """Everything not yet written (at the end of the run), in order."""
        out = [self._complete(i) for i in sorted(self._dirty)]
        self._dirty.clear()
        last = max([self._next - 1, *self._open])
        while self._next <= last:
            out.append(self._complete(self._next))
            self._next += 1
        return out

    def latest(self, now: float) -> CompletedWindow | None:
        """A provisional view of the newest window that has ended, for the live status."""
        last = self.grid.last_index
        index = last if now >= self.grid.end(last) else self.grid.index(now) - 1
        if index < 0:
            return None
        window = self._open.get(index)
        return self._build(index, window) if window is not None else self._written.get(index)

    # internals

    def _window(self, index: int) -> _Window | None:
        if index >= self._next:
            return self._open.setdefault(index, _Window())
        if index in self._open:
            return self._open[index]
        written = self._written.get(index)
        if written is None:
            return None
        window = self._open[index] = _reopen(written)
        self._dirty.add(index)
        return window

    def _merge_entry(
        self,
        series: str,
        name: str,
        index: int,
        count: int,
        failures: int,
        clamped: int,
        encoded: str,
    ) -> None:
        window = self._window(index)
        if window is None:
            self.totals.late_samples += int(count)
            log.warning(
                "dropping %d late %s samples for long-written window %d", count, series, index
            )
            return
        if index < self._next:
            self._dirty.add(index)
        merged = window.entries.get((series, name))
        if merged is None:
            merged = window.entries[(series, name)] = _Merged()
        merged.count += int(count)
        merged.failures += int(failures)
        if encoded:
            merged.histogram.merge(Histogram.decode(encoded, int(clamped)))
        if series == LATENCY:
            self.totals.requests += int(count)
            self.totals.failures += int(failures)

    def _merge_errors(
        self, name: str, index: int, category: str, count: int, messages: Iterable[str]
    ) -> None:
        window = self._window(index)
        if window is None:
            return
        if index < self._next:
            self._dirty.add(index)
        total, kept = window.errors.get((name, category), (0, []))
        for message in messages:
            if len(kept) < MAX_MESSAGES and message not in kept:
                kept.append(str(message))
        window.errors[(name, category)] = (total + int(count), kept)

    def _complete(self, index: int) -> CompletedWindow:
        window = self._open.pop(index, None) or _Window()
        completed = self._build(index, window)
        self._written[index] = completed
        self.totals.windows_written += 1
        return completed

    def _build(self, index: int, window: _Window) -> CompletedWindow:
        entries = tuple(
            _entry(series, name, merged)
            for (series, name), merged in sorted(window.entries.items())
        )
        errors = tuple(
            ErrorEntry(name, category, count, tuple(messages))
            for (name, category), (count, messages) in sorted(window.errors.items())
        )
        return CompletedWindow(
            index=index,
            start=self.grid.start_datetime(index),
            length_s=self.grid.length(index),
            saturation=tuple(sorted(window.saturation)),
            entries=entries,
            errors=errors,
            revision=window.revision,
        )

    def _forget_old(self) -> None:
        for index in [i for i in self._written if i < self._next - self.keep_written]:
            del self._written[index]


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


def _reopen(written: CompletedWindow) -> _Window:
    """A written window back in merge form, so late data revises it cumulatively."""
    window = _Window(saturation=set(written.saturation), revision=written.revision + 1)
    for e in written.entries:
        window.entries[(e.series, e.name)] = _Merged(
            Histogram.decode(e.histogram, e.clamped), e.count, e.failures
        )
    for err in written.errors:
        window.errors[(err.name, err.category)] = (err.count, list(err.messages))
    return window
