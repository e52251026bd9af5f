"""Retention: old windows merge exactly into coarse windows; nothing else changes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from observatory.cli import _invoke
from observatory.conclude import write_report
from observatory.domain import RunStatus, TriggerSource
from observatory.load.histogram import Histogram
from observatory.service.retention import compact
from observatory.settings import Settings
from observatory.store import samples
from observatory.store.db import transaction
from observatory.store.tables import Run, WindowRow, utcnow
from observatory.validation import ValidationRequest, plan
from tests.service.conftest import HOST_FP, MakeSettings, windows


def _run(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    age: timedelta,
    count: int,
    status: str = RunStatus.DONE,
    tag: str = "a",
) -> int:
    request = ValidationRequest(
        build="cand", scenarios=("chat",), source=TriggerSource.API, tag=tag, baseline="none"
    )
    with transaction(sessions) as session:
        run_id = plan(session, settings, request, HOST_FP).run_ids[0]
        run = session.get(Run, run_id)
        assert run is not None
        start = utcnow().replace(microsecond=0) - age
        run.status, run.started_at = status, start
        run.ended_at = start + timedelta(seconds=count * 10)
        samples.add_windows(session, run_id, windows(start, count, seed=run_id))
    return run_id


def _rows(sessions: sessionmaker[Session], run_id: int) -> list[WindowRow]:
    with transaction(sessions) as session:
        query = select(WindowRow).where(WindowRow.run_id == run_id).order_by(WindowRow.start)
        return list(session.scalars(query))


def _merged(rows: list[WindowRow]) -> Histogram:
    merged = Histogram()
    for row in rows:
        merged.merge(Histogram.decode(row.histogram))
    return merged


def test_old_windows_merge_exactly_and_idempotently(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    old = _run(sessions, settings, age=timedelta(days=40), count=125)
    recent = _run(sessions, settings, age=timedelta(days=1), count=30, tag="b")
    running = _run(
        sessions, settings, age=timedelta(days=40), count=30, status=RunStatus.RUNNING, tag="c"
    )
    before = _rows(sessions, old)
    untouched = {r: [w.id for w in _rows(sessions, r)] for r in (recent, running)}

    result = compact(settings, sessions)

    after = _rows(sessions, old)
    assert (result.runs, result.removed, result.written) == (1, 125, 3)
    assert [w.length_s for w in after] == [600.0, 600.0, 50.0]
    assert [w.start for w in after] == [before[0].start, before[60].start, before[120].start]
    for merged, group in zip(after, (before[:60], before[60:120], before[120:]), strict=True):
        exact = _merged(group)
        assert Histogram.decode(merged.histogram) == exact
        assert merged.count == sum(w.count for w in group)
        assert merged.failures == sum(w.failures for w in group)
        assert merged.p99 == exact.percentile_ms(99.0)
        assert merged.p50 == exact.percentile_ms(50.0)
        assert merged.max == exact.max_ms()
        assert merged.p99 != pytest.approx(sum(w.p99 for w in group) / len(group), rel=1e-9)
    for run_id, ids in untouched.items():
        assert [w.id for w in _rows(sessions, run_id)] == ids

    again = compact(settings, sessions)
    assert (again.runs, again.removed, again.written) == (0, 0, 0)
    assert [w.id for w in _rows(sessions, old)] == [w.id for w in after]


def test_a_compacted_run_still_renders_its_report(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    run_id = _run(sessions, settings, age=timedelta(days=40), count=90)
    compact(settings, sessions)
    assert len(_rows(sessions, run_id)) == 2
    page = write_report(run_id, settings, sessions)
    assert page is not None
    assert page.is_file()


def test_db_compact_command(
    db_url: str,
    sessions: sessionmaker[Session],
    make_settings: MakeSettings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(f"database_url: {db_url}\nretention: {{windows_after: 7d}}")
    run_id = _run(sessions, settings, age=timedelta(days=10), count=61)
    config = settings.data_dir.parent / "observatory.yaml"
    assert _invoke(["--config", str(config), "db", "compact"]) == 0
    out = capsys.readouterr().out
    assert "merged 60 window(s) older than 7d into 1 window(s) of 10m in 1 run(s)" in out
    assert len(_rows(sessions, run_id)) == 2
