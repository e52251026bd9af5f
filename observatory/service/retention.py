"""Retention: old windows are merged into coarser windows, never deleted.

Windows of finished runs older than ``retention.windows_after`` are merged per run, series
and request name into buckets of ``retention.coarse_window`` (anchored at the run's start).
HDR histograms merge exactly (bucket counts add), so the merged window's percentiles are
those of every request in the bucket, not an average of percentiles; counts and failures
add up, ``saturated`` holds when any merged window was saturated. Error samples, resource
samples, findings and summaries are kept as they are, so old reports still render (with
coarser time-series). Idempotent: a bucket already merged is a group of one, left alone.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import RunStatus
from observatory.errors import LoadError
from observatory.load.histogram import Histogram
from observatory.settings import Settings
from observatory.store.db import transaction
from observatory.store.tables import Run, WindowRow, utcnow

log = logging.getLogger(__name__)

FINISHED = [s.value for s in RunStatus if s.finished]


@dataclass(frozen=True, slots=True)
class CompactionResult:
    runs: int  # runs that had windows merged
    removed: int  # fine windows merged away
    written: int  # coarse windows written


def compact(
    settings: Settings, sessions: sessionmaker[Session], now: datetime | None = None
) -> CompactionResult:
    """Merge old windows of every finished run; one transaction per run."""
    cutoff = (now or utcnow()) - timedelta(seconds=settings.retention.windows_after)
    coarse = settings.retention.coarse_window
    with transaction(sessions) as session:
        run_ids = _runs_to_compact(session, cutoff, coarse)
    runs = removed = written = 0
    for run_id in run_ids:
        with transaction(sessions) as session:
            gone, added = compact_run(session, run_id, cutoff, coarse)
        if added:
            runs, removed, written = runs + 1, removed + gone, written + added
            log.info("run %s: %d windows merged into %d", run_id, gone, added)
    return CompactionResult(runs, removed, written)


def _runs_to_compact(session: Session, cutoff: datetime, coarse: float) -> list[int]:
    query = (
        select(WindowRow.run_id)
        .join(Run, Run.id == WindowRow.run_id)
        .where(Run.status.in_(FINISHED), WindowRow.start < cutoff, WindowRow.length_s < coarse)
        .distinct()
        .order_by(WindowRow.run_id)
    )
    return list(session.scalars(query))


def compact_run(session: Session, run_id: int, cutoff: datetime, coarse: float) -> tuple[int, int]:
    """Merge run ``run_id``'s windows in whole buckets ending before ``cutoff``."""
    anchor = _anchor(session, run_id)
    if anchor is None:
        return 0, 0
    removed = written = 0
    keys = session.execute(
        select(WindowRow.series, WindowRow.name).where(WindowRow.run_id == run_id).distinct()
    ).all()
    for series, name in keys:
        rows = session.scalars(
            select(WindowRow)
            .where(
                WindowRow.run_id == run_id,
                WindowRow.series == series,
                WindowRow.name == name,
                WindowRow.start < cutoff,
            )
            .order_by(WindowRow.start)
        ).all()
        for group in _buckets(rows, anchor, coarse, cutoff):
            merged = merge_windows(group)
            if merged is None:
                continue
            session.execute(delete(WindowRow).where(WindowRow.id.in_([w.id for w in group])))
            session.flush()
            session.add(merged)
            removed, written = removed + len(group), written + 1
    session.flush()
    return removed, written


def _anchor(session: Session, run_id: int) -> datetime | None:
    run = session.get(Run, run_id)
    if run is None:
        return None
    first = session.scalar(
        select(WindowRow.start).where(WindowRow.run_id == run_id).order_by(WindowRow.start)
    )
    return run.started_at or first


def _buckets(
    rows: Sequence[WindowRow], anchor: datetime, coarse: float, cutoff: datetime
) -> Iterable[list[WindowRow]]:
    """Groups of two or more windows sharing a bucket that ended before ``cutoff``."""
    groups: dict[int, list[WindowRow]] = {}
    for row in rows:
        index = math.floor((row.start - anchor).total_seconds() / coarse)
        groups.setdefault(index, []).append(row)
    for index, group in sorted(groups.items()):
        bucket_end = anchor + timedelta(seconds=(index + 1) * coarse)
        if len(group) > 1 and bucket_end <= cutoff:
            yield group


def merge_windows(group: Sequence[WindowRow]) -> WindowRow | None:
    """One window holding every request of ``group``; None if a histogram is corrupt."""
    try:
        histogram = _merged_histogram(w.histogram for w in group)
    except LoadError as exc:
        log.error("run %s: windows left unmerged: %s", group[0].run_id, exc)
        return None
    start = min(w.start for w in group)
    end = max(w.start + timedelta(seconds=w.length_s) for w in group)
    percentiles = histogram.percentiles_ms() if histogram else {}
    return WindowRow(
        run_id=group[0].run_id,
        series=group[0].series,
        name=group[0].name,
        start=start,
        length_s=(end - start).total_seconds(),
        count=sum(w.count for w in group),
        failures=sum(w.failures for w in group),
        histogram=histogram.encode() if histogram else "",
        p50=percentiles.get(50.0, 0.0),
        p90=percentiles.get(90.0, 0.0),
        p95=percentiles.get(95.0, 0.0),
        p99=percentiles.get(99.0, 0.0),
        p999=percentiles.get(99.9, 0.0),
        max=histogram.max_ms() if histogram else max(w.max for w in group),
        saturated=any(w.saturated for w in group),
    )


def _merged_histogram(encoded: Iterable[str]) -> Histogram | None:
    """The exact merge of the given histograms (empty strings: count-only series)."""
    merged: Histogram | None = None
    for text in encoded:
        if not text:
            continue
        part = Histogram.decode(text)
        if merged is None:
            merged = Histogram()
        merged.merge(part)
    return merged
