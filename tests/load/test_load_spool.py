"""The spool: durable lines, torn last line, incremental follow, idempotent replay."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from observatory.domain import ErrorSample, Window
from observatory.errors import LoadError
from observatory.load.collector import Collector
from observatory.load.recorder import Recorder
from observatory.load.spool import SpoolWriter, follow_spool, read_spool
from observatory.load.status import read_status, write_status
from observatory.load.window import WindowGrid

START = 1_800_000_000.0


def _windows(n: int) -> list:  # type: ignore[type-arg]
    grid = WindowGrid(START, 10.0, 10.0 * n)
    recorder = Recorder(grid)
    for i in range(n):
        recorder.record("latency", "chat", recorder.index(START + 10 * i + 1), 10.0 + i)
        recorder.record("ttft", "chat_stream", recorder.index(START + 10 * i + 1), 5.0)
        recorder.fail("chat", recorder.index(START + 10 * i + 2), "http_500", "boom")
    collector = Collector(grid, grace_s=0.0)
    collector.merge(recorder.take())
    collector.mark_saturated(START, START + 1, "host_cpu")
    return collector.flush_all()


def _write(path: Path, n: int) -> None:
    writer = SpoolWriter(path)
    for window in _windows(n):
        writer.append(window)
    writer.close()


def test_read_spool_yields_domain_windows_and_error_samples(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    _write(path, 3)
    records = list(read_spool(path))
    windows = [r for r in records if isinstance(r, Window)]
    errors = [r for r in records if isinstance(r, ErrorSample)]
    assert len(windows) == 6
    assert len(errors) == 3
    first = windows[0]
    assert first.start.tzinfo == UTC
    assert first.start.timestamp() == START
    assert (first.series, first.name, first.count, first.failures) == ("latency", "chat", 2, 1)
    assert first.saturated
    assert not windows[2].saturated
    assert first.p50 == pytest.approx(10.0, rel=1e-3)
    assert errors[1].window_start.timestamp() == START + 10
    assert errors[0].messages == ("boom",)


def test_replay_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    _write(path, 4)
    once, twice = list(read_spool(path)), list(read_spool(path))
    assert once == twice
    keys = [(r.series, r.name, r.start) for r in once if isinstance(r, Window)]
    assert len(keys) == len(set(keys))  # each window key once: any upsert ingests the same


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    _write(path, 2)
    complete = list(read_spool(path))
    with path.open("ab") as handle:
        handle.write(b'{"v":1,"index":2,"start":"2027-01-')  # a kill -9 mid-write
    assert list(read_spool(path)) == complete


def test_corrupt_line_in_the_middle_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    _write(path, 1)
    with path.open("ab") as handle:
        handle.write(b"not json\n")
    with pytest.raises(LoadError, match="not a valid spool record"):
        list(read_spool(path))


def test_follow_spool_resumes_from_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    assert follow_spool(path, 0) == ([], 0)  # not written yet
    windows = _windows(3)
    writer = SpoolWriter(path)
    writer.append(windows[0])
    first, offset = follow_spool(path, 0)
    assert len(first) == 3
    assert offset == path.stat().st_size
    with path.open("ab") as handle:
        handle.write(b'{"partial')
    assert follow_spool(path, offset) == ([], offset)
    path.write_bytes(path.read_bytes()[:offset])  # the writer never leaves half lines
    writer.append(windows[1])
    writer.append(windows[2])
    rest, end = follow_spool(path, offset)
    assert len(rest) == 6
    assert end == path.stat().st_size
    assert first + rest == list(read_spool(path))
    writer.close()


def test_follow_spool_reads_in_bounded_slices(tmp_path: Path) -> None:
    path = tmp_path / "spool.jsonl"
    _write(path, 5)
    out, offset = [], 0
    for _ in range(10):
        records, offset = follow_spool(path, offset, max_bytes=1)
        out.extend(records)
    assert out == list(read_spool(path))


def test_status_file_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "status.json"
    assert read_status(path) == {}
    write_status(path, {"state": "running", "rps": 12.5})
    write_status(path, {"state": "stopped", "rps": 0.0})
    assert read_status(path) == {"state": "stopped", "rps": 0.0}
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]
