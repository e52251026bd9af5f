"""Time-series of a run: windows, error samples, resource samples.

Writes are idempotent upserts on each table's natural key, so replaying a spool (after a
crash, or twice by mistake) never duplicates a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from observatory.domain import ErrorSample, ResourceSample, Window
from observatory.signature import signature
from observatory.store.tables import (
    Base,
    ErrorSampleRow,
    ResourceSampleRow,
    WindowRow,
)

_BATCH = 500


def _upsert(session: Session, table: Table, rows: Sequence[dict[str, Any]], key: list[str]) -> int:
    """Insert rows, skipping those whose natural key exists; return how many were new."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    added = 0
    for i in range(0, len(rows), _BATCH):
        stmt = (
            insert(table)
            .values(list(rows[i : i + _BATCH]))
            .on_conflict_do_nothing(index_elements=key)
            .returning(table.c.id)  # rowcount is unreliable for multi-row inserts on psycopg
        )
        added += len(session.execute(stmt).all())
    return added


def add_windows(session: Session, run_id: int, windows: Iterable[Window]) -> int:
    rows = [{"run_id": run_id, **asdict(w)} for w in windows]
    return _upsert(session, _table(WindowRow), rows, ["run_id", "series", "name", "start"])


def add_error_samples(session: Session, run_id: int, samples: Iterable[ErrorSample]) -> int:
    """One row per (name, window, category); a window's samples arrive in one call.

    The load generator hands one sample per failure signature; they share the row, whose
    ``messages`` then holds ``{"message": sample, "count": n}`` per signature (plain strings
    are messages without a count of their own, as older runs stored them).
    """
    rows: dict[tuple[str, datetime, str], dict[str, Any]] = {}
    for sample in samples:
        key = (sample.name, sample.window_start, sample.category)
        row = rows.setdefault(key, {**asdict(sample), "count": 0, "messages": []})
        row["run_id"] = run_id
        row["count"] += sample.count
        row["messages"] += _stored_messages(sample)
    key_columns = ["run_id", "name", "window_start", "category"]
    return _upsert(session, _table(ErrorSampleRow), list(rows.values()), key_columns)


def _stored_messages(sample: ErrorSample) -> list[Any]:
    if len(sample.messages) > 1:
        return list(sample.messages)
    message = sample.messages[0] if sample.messages else ""
    return [{"message": message, "count": sample.count}]


def add_resource_samples(session: Session, run_id: int, samples: Iterable[ResourceSample]) -> int:
    rows = [{"run_id": run_id, **asdict(s)} for s in samples]
    return _upsert(session, _table(ResourceSampleRow), rows, ["run_id", "role", "at"])


def _table(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def windows_frame(session: Session, run_id: int, origin: datetime) -> pd.DataFrame:
    """Windows of a run as a DataFrame; ``t`` = seconds from ``origin`` (the run start)."""
    columns = [
        "series", "name", "start", "length_s", "count", "failures", "histogram",
        "p50", "p90", "p95", "p99", "p999", "max", "saturated",
    ]  # fmt: skip
    query = select(*(getattr(WindowRow, c) for c in columns)).where(WindowRow.run_id == run_id)
    frame = pd.DataFrame(session.execute(query.order_by(WindowRow.start)).all(), columns=columns)
    return _with_offsets(frame, "start", origin)


def errors_frame(session: Session, run_id: int, origin: datetime) -> pd.DataFrame:
    """One row per (window, name, category, signature); ``message`` is the signature."""
    columns = ["window_start", "name", "category", "count", "messages"]
    query = select(*(getattr(ErrorSampleRow, c) for c in columns)).where(
        ErrorSampleRow.run_id == run_id
    )
    rows = [
        (start, name, category, count, message)
        for start, name, category, total, messages in session.execute(query).all()
        for count, message in signature_counts(total, messages or [])
    ]
    frame = pd.DataFrame(rows, columns=[*columns[:4], "message"])
    return _with_offsets(frame, "window_start", origin)


def signature_counts(total: int, messages: Sequence[Any]) -> list[tuple[int, str]]:
    """(count, signature) of one stored row; a count without its own signature gets one
    only when all the row's plain messages share it ("" when unknown)."""
    counted = [m for m in messages if isinstance(m, dict)]
    out = [(int(m["count"]), signature(str(m["message"])) if m["message"] else "") for m in counted]
    rest = total - sum(count for count, _ in out)
    if rest > 0 or not out:
        plain = {signature(str(m)) for m in messages if not isinstance(m, dict)}
        out.append((rest, plain.pop() if len(plain) == 1 else ""))
    return out


def sample_messages(messages: Sequence[Any]) -> list[str]:
    """The sample messages of a stored row, whichever way it was stored."""
    texts = (str(m["message"]) if isinstance(m, dict) else str(m) for m in messages)
    return [text for text in texts if text]


def resources_frame(session: Session, run_id: int, origin: datetime) -> pd.DataFrame:
    columns = [
        "at", "role", "rss_mb", "uss_mb", "cpu_percent", "threads", "fds", "connections",
        "log_bytes",
    ]  # fmt: skip
    query = select(*(getattr(ResourceSampleRow, c) for c in columns)).where(
        ResourceSampleRow.run_id == run_id
    )
    frame = pd.DataFrame(
        session.execute(query.order_by(ResourceSampleRow.at)).all(), columns=columns
    )
    return _with_offsets(frame, "at", origin)


def _with_offsets(frame: pd.DataFrame, column: str, origin: datetime) -> pd.DataFrame:
    """Replace an absolute time column by ``t``: float seconds since ``origin``."""
    if frame.empty:
        return frame.drop(columns=[column]).assign(t=pd.Series(dtype=float))
    stamps = pd.to_datetime(frame[column], utc=True)
    frame = frame.drop(columns=[column])
    frame.insert(0, "t", (stamps - pd.Timestamp(origin)).dt.total_seconds())
    return frame


def error_messages(session: Session, run_id: int) -> list[ErrorSampleRow]:
    query = select(ErrorSampleRow).where(ErrorSampleRow.run_id == run_id)
    return list(session.scalars(query.order_by(ErrorSampleRow.window_start)))
