"""Window grid, the per-process recorder and the master's collector."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from observatory.errors import LoadError
from observatory.load.collector import Collector
from observatory.load.histogram import Histogram
from observatory.load.recorder import MAX_SIGNATURES, Recorder
from observatory.load.window import WindowGrid
from observatory.signature import OVERFLOW

START = 1_800_000_000.0


def test_grid_aligns_to_run_start_and_clamps_into_the_run() -> None:
    grid = WindowGrid(run_start=START, length_s=10.0, duration_s=25.0)
    assert grid.last_index == 2
    assert grid.index(START) == 0
    assert grid.index(START + 9.999) == 0
    assert grid.index(START + 10.0) == 1
    assert grid.index(START - 5) == 0  # before the start: the first window
    assert grid.index(START + 400) == 2  # draining after the deadline: the last window
    assert grid.length(2) == pytest.approx(5.0)  # the last window is cut at the deadline
    assert grid.start_datetime(1) == datetime.fromtimestamp(START + 10, tz=UTC)


def test_recorder_hands_out_deltas_and_starts_afresh() -> None:
    recorder = Recorder(WindowGrid(START, 10.0, 60.0))
    recorder.record("latency", "chat", recorder.index(START + 1), 12.0)
    recorder.record("latency", "chat", recorder.index(START + 11), 14.0)
    recorder.fail("chat", recorder.index(START + 2), "http_500", "boom")
    first = recorder.take()
    entries = {(e[0], e[1], e[2]): e for e in first["entries"]}
    assert entries[("latency", "chat", 0)][3:5] == [2, 1]  # count 2, failures 1
    assert Histogram.decode(entries[("latency", "chat", 0)][6]).count == 1  # successes only
    assert entries[("latency", "chat", 1)][3:5] == [1, 0]
    assert first["errors"] == [["chat", 0, "http_500", 1, ["boom"], "boom"]]
    assert recorder.take() == {"entries": [], "errors": []}


def test_recorder_counts_each_signature_with_one_sample() -> None:
    recorder = Recorder(WindowGrid(START, 10.0, 60.0))
    for i in range(6):
        recorder.fail("chat", recorder.index(START), "timeout", f"read timed out after {i} s")
    recorder.fail("chat", recorder.index(START), "timeout", "pool closed")
    errors = {e[5]: e for e in recorder.take()["errors"]}
    assert errors["read timed out after <n> s"][3:5] == [6, ["read timed out after 0 s"]]
    assert errors["pool closed"][3:5] == [1, ["pool closed"]]


def test_signatures_past_the_limit_are_counted_under_the_catch_all() -> None:
    recorder = Recorder(WindowGrid(START, 10.0, 60.0))
    for i in range(MAX_SIGNATURES + 5):
        recorder.fail("chat", recorder.index(START), "http_500", f"error kind {chr(65 + i)}")
    errors = recorder.take()["errors"]
    assert len(errors) == MAX_SIGNATURES + 1
    [overflow] = [e for e in errors if e[5] == OVERFLOW]
    assert overflow[3:5] == [5, []]
    collector = Collector(WindowGrid(START, 10.0, 30.0), grace_s=5.0)
    collector.merge({"entries": [], "errors": errors})
    collector.merge({"entries": [], "errors": [["chat", 0, "http_500", 2, ["novel"], "novel"]]})
    [window] = collector.due(START + 15.0)
    assert sum(e.count for e in window.errors) == MAX_SIGNATURES + 5 + 2  # counts stay exact
    assert sum(1 for e in window.errors if not e.messages) == 1  # novel joined the catch-all


def _delta(index_at: float, values: list[float], fail: int = 0) -> dict[str, object]:
    recorder = Recorder(WindowGrid(START, 10.0, 30.0))
    for value in values:
        recorder.record("latency", "chat", recorder.index(index_at), value)
    for _ in range(fail):
        recorder.fail("chat", recorder.index(index_at), "http_503", "unavailable")
    return recorder.take()


def test_collector_merges_workers_and_writes_windows_after_the_grace() -> None:
    collector = Collector(WindowGrid(START, 10.0, 30.0), grace_s=5.0)
    collector.merge(_delta(START + 1, [10.0, 20.0]))
    collector.merge(_delta(START + 2, [30.0], fail=2))
    assert collector.due(START + 14.9) == []
    [window] = collector.due(START + 15.0)
    assert window.index == 0
    [entry] = window.entries
    assert (entry.series, entry.name, entry.count, entry.failures) == ("latency", "chat", 5, 2)
    assert entry.p50 == pytest.approx(20.0, rel=1e-3)
    assert entry.max == pytest.approx(30.0, rel=1e-3)
    [error] = window.errors
    assert (error.category, error.count, error.messages) == ("http_503", 2, ("unavailable",))
    assert collector.totals.requests == 5
    assert collector.totals.failures == 2


def test_every_window_is_written_once_and_in_order_even_when_empty() -> None:
    collector = Collector(WindowGrid(START, 10.0, 30.0), grace_s=5.0)
    collector.merge(_delta(START + 21, [1.0]))
    windows = collector.due(START + 100)
    assert [w.index for w in windows] == [0, 1, 2]
    assert [len(w.entries) for w in windows] == [0, 0, 1]
    assert collector.due(START + 200) == []
    assert collector.flush_all() == []


def test_late_samples_move_to_the_oldest_open_window_with_exact_counts() -> None:
    collector = Collector(WindowGrid(START, 10.0, 30.0), grace_s=5.0)
    collector.merge(_delta(START + 1, [10.0]))
    [first] = collector.due(START + 15)
    collector.merge(_delta(START + 2, [11.0]))  # for window 0, already written
    assert collector.totals.late_samples == 1
    rest = collector.flush_all()
    assert [w.index for w in rest] == [1]
    assert sum(e.count for e in (*first.entries, *rest[0].entries)) == 2


def test_samples_after_the_last_window_was_written_are_counted_as_lost() -> None:
    collector = Collector(WindowGrid(START, 10.0, 20.0), grace_s=5.0)
    collector.merge(_delta(START + 15, [10.0]))
    assert [w.index for w in collector.flush_all()] == [0, 1]
    collector.merge(_delta(START + 15, [10.0]))
    assert collector.totals.lost_samples == 1
    assert collector.flush_all() == []


def test_saturation_flags_the_overlapping_open_windows() -> None:
    collector = Collector(WindowGrid(START, 10.0, 40.0), grace_s=5.0)
    collector.mark_saturated(START + 8, START + 12, "loadgen_cpu")
    windows = collector.flush_all()
    assert [(w.index, w.saturation) for w in windows] == [
        (0, ("loadgen_cpu",)),
        (1, ("loadgen_cpu",)),
    ]
    assert windows[0].saturated


def test_malformed_report_is_a_load_error() -> None:
    collector = Collector(WindowGrid(START, 10.0, 40.0), grace_s=5.0)
    with pytest.raises(LoadError, match="malformed load report"):
        collector.merge({"entries": [["latency", "chat"]], "errors": []})


def test_latest_is_a_provisional_view_of_the_newest_ended_window() -> None:
    collector = Collector(WindowGrid(START, 10.0, 40.0), grace_s=5.0)
    collector.merge(_delta(START + 12, [7.0, 9.0], fail=1))
    assert collector.latest(START + 5) is None
    latest = collector.latest(START + 21)
    assert latest is not None
    assert (latest.requests, latest.failures, latest.length_s) == (3, 1, 10.0)
    assert latest.p99_ms == pytest.approx(9.0, rel=1e-3)
    collector.due(START + 100)
    written = collector.latest(START + 100)
    assert written is not None
    assert written.requests == 0  # the newest ended window (index 3) had no samples
