"""The spool: completed windows, one JSON line each, durable the moment they are written.

The Locust master appends each completed window to ``<run_dir>/spool.jsonl`` and flushes
and fsyncs at once, so a kill -9 of the load generator (or of the service) loses no
completed window. Only the last line can be torn by such a kill; readers ignore a last
line without its newline. Each window is written once (see collector), so every
(series, name, window start) appears once: ingesting with an idempotent upsert keyed by
(run, series, name, window start) and replaying the whole spool again changes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final

from observatory.domain import ErrorSample, Window
from observatory.errors import LoadError
from observatory.load.window import CompletedWindow

SPOOL_NAME: Final = "spool.jsonl"
SpoolRecord = Window | ErrorSample


class SpoolWriter:
    """Appends completed windows; every line is on disk before ``append`` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = path.open("ab")

    def append(self, window: CompletedWindow) -> None:
        line = json.dumps(window.to_json(), separators=(",", ":")).encode() + b"\n"
        try:
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise LoadError(f"cannot write the spool {self.path}: {exc}") from exc

    def close(self) -> None:
        self._file.close()


def read_spool(path: Path) -> Iterator[SpoolRecord]:
    """Every Window and ErrorSample in the spool, in write order (torn last line ignored).

    Streams line by line: a 24-hour spool is never held in memory at once.
    """
    for _, records in _lines(path, 0, max_bytes=None):
        yield from records


def follow_spool(
    path: Path, offset: int, max_bytes: int = 16 << 20
) -> tuple[list[SpoolRecord], int]:
    """Records of the complete lines after byte ``offset``, and the offset to resume from.

    For incremental ingest during a run: call again with the returned offset. A partial
    last line is left for the next call; at most about ``max_bytes`` are read per call.
    """
    out: list[SpoolRecord] = []
    resume = offset
    for line_end, records in _lines(path, offset, max_bytes):
        out.extend(records)
        resume = line_end
    return out, resume


def _lines(
    path: Path, offset: int, max_bytes: int | None
) -> Iterator[tuple[int, list[SpoolRecord]]]:
    """(offset after the line, its records) for each complete line from ``offset``."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    except OSError as exc:
        raise LoadError(f"cannot read the spool {path}: {exc}") from exc
    with handle:
        handle.seek(offset)
        start = offset
        while max_bytes is None or offset - start < max_bytes:
            line = handle.readline()
            if not line.endswith(b"\n"):
                return  # end of file, or a torn last line: left for a later call
            offset += len(line)
            where = f"{path} (line ending at byte {offset})"
            yield offset, parse_line(line, where) if line.strip() else []


def parse_line(line: bytes, where: str = "spool line") -> list[SpoolRecord]:
    """The Window and ErrorSample records of one spool line."""
    try:
        data = json.loads(line)
        start = datetime.fromisoformat(data["start"])
        saturated = bool(data["saturated"])
        length = float(data["length_s"])
        records: list[SpoolRecord] = [
            _window(entry, start, length, saturated) for entry in data["windows"]
        ]
        records.extend(_error(entry, start) for entry in data["errors"])
    except (ValueError, KeyError, TypeError) as exc:
        raise LoadError(f"{where}: not a valid spool record ({exc!r})") from None
    return records


def _window(entry: dict[str, Any], start: datetime, length: float, saturated: bool) -> Window:
    return Window(
        series=str(entry["series"]),
        name=str(entry["name"]),
        start=start,
        length_s=length,
        count=int(entry["count"]),
        failures=int(entry["failures"]),
        histogram=str(entry["histogram"]),
        p50=float(entry["p50"]),
        p90=float(entry["p90"]),
        p95=float(entry["p95"]),
        p99=float(entry["p99"]),
        p999=float(entry["p999"]),
        max=float(entry["max"]),
        saturated=saturated,
    )


def _error(entry: dict[str, Any], start: datetime) -> ErrorSample:
    return ErrorSample(
        name=str(entry["name"]),
        window_start=start,
        category=str(entry["category"]),
        count=int(entry["count"]),
        messages=tuple(str(m) for m in entry["messages"]),
    )
