"""Schedules: one validation per fire even with two schedulers; misfires; newest-candidate."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import RunStatus
from observatory.service.scheduler import ScheduleRunner, fire_times, latest_fire, trigger_for
from observatory.settings import ScheduleSettings, Settings
from observatory.store import builds
from observatory.store.db import make_engine, session_factory, transaction
from observatory.store.runs import request_cancel
from observatory.store.tables import Build, Run, Validation
from tests.service.conftest import HOST_FP, MakeSettings

TICK = """
schedules:
  tick: {interval: 1s, build: cand, scenarios: [chat], tag: soak}
  nightly: {cron: "0 3 * * *", build: newest-candidate, scenarios: [chat], duration: 24h}
"""


@pytest.fixture
def scheduled(make_settings: MakeSettings, sessions: sessionmaker[Session]) -> Settings:
    settings = make_settings(TICK)
    with transaction(sessions) as session:
        builds.sync_configured(session, settings.builds)
    return settings


def _fires(sessions: sessionmaker[Session], schedule: str) -> list[datetime]:
    with transaction(sessions) as session:
        query = select(Validation.fire_time).where(Validation.schedule == schedule)
        return [t for t in session.scalars(query) if t is not None]


def _end_all(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        for run in session.scalars(select(Run)):
            run.status = RunStatus.DONE


def _cancel_queued(sessions: sessionmaker[Session], stop: threading.Event) -> None:
    """Ends each fire's runs at once, so every fire is a fresh request, not a duplicate."""
    while not stop.wait(0.05):
        with transaction(sessions) as session:
            for run_id in session.scalars(select(Run.id).where(Run.status == RunStatus.QUEUED)):
                request_cancel(session, run_id)


def test_two_schedulers_on_one_database_create_one_validation_per_fire(
    engine: Engine, sessions: sessionmaker[Session], scheduled: Settings
) -> None:
    settings = scheduled.model_copy(update={"schedules": {"tick": scheduled.schedules["tick"]}})
    second_engine = make_engine(engine.url.render_as_string(hide_password=False))
    runners = [
        ScheduleRunner(settings, sessions, HOST_FP),
        ScheduleRunner(settings, session_factory(second_engine), HOST_FP),
    ]
    stop = threading.Event()
    canceller = threading.Thread(target=_cancel_queued, args=(sessions, stop))
    canceller.start()
    try:
        for runner in runners:
            runner.start()
        assert all(r.alive for r in runners)
        time.sleep(4.5)
    finally:
        for runner in runners:
            runner.stop()
        stop.set()
        canceller.join()
        second_engine.dispose()
    fires = _fires(sessions, "tick")
    assert len(fires) >= 2, fires
    assert max(Counter(fires).values()) == 1, "a fire time was enqueued twice"
    assert all(t.microsecond == 0 for t in fires), "interval fires are epoch-aligned"
    with transaction(sessions) as session:
        sources = set(session.scalars(select(Validation.source)))
    assert sources == {"schedule"}


def test_the_same_fire_from_two_hosts_at_once_is_enqueued_once(
    engine: Engine, sessions: sessionmaker[Session], scheduled: Settings
) -> None:
    fire = datetime(2031, 1, 1, 3, 0, tzinfo=UTC)
    engines = [make_engine(engine.url.render_as_string(hide_password=False)) for _ in range(4)]
    runners = [ScheduleRunner(scheduled, session_factory(e), HOST_FP) for e in engines]
    results: list[int | None] = []
    barrier = threading.Barrier(len(runners))

    def enqueue(runner: ScheduleRunner) -> None:
        barrier.wait()
        results.append(runner.enqueue("tick", fire))

    threads = [threading.Thread(target=enqueue, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for each in engines:
        each.dispose()
    assert len([r for r in results if r is not None]) == 1
    assert _fires(sessions, "tick") == [fire]


def test_a_fire_missed_while_down_runs_once_within_the_grace(
    sessions: sessionmaker[Session], scheduled: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    runner = ScheduleRunner(scheduled, sessions, HOST_FP)
    early = datetime(2031, 5, 10, 3, 20, tzinfo=UTC)
    assert runner.catch_up("nightly", now=early) is None, "a new schedule waits for its time"
    before = datetime(2031, 5, 9, 3, 0, tzinfo=UTC)
    assert runner.enqueue("nightly", before) is not None
    _end_all(sessions)
    three = datetime(2031, 5, 10, 3, 0, tzinfo=UTC)
    created = runner.catch_up("nightly", now=early)
    assert created is not None
    assert runner.catch_up("nightly", now=datetime(2031, 5, 10, 3, 40, tzinfo=UTC)) is None
    assert sorted(_fires(sessions, "nightly")) == [before, three]
    with transaction(sessions) as session:
        run = session.scalar(select(Run).where(Run.validation_id == created))
        assert run is not None
        assert run.duration_s == 86400.0
    # Down from 03:40 on the 10th to 05:00 on the 13th: three nightly fires missed, all
    # older than the one-hour grace: skipped, and said so.
    caplog.set_level(logging.WARNING, logger="observatory.service.scheduler")
    _end_all(sessions)
    assert runner.catch_up("nightly", now=datetime(2031, 5, 13, 5, 0, tzinfo=UTC)) is None
    assert sorted(_fires(sessions, "nightly")) == [before, three]
    assert "3 fire(s) from 2031-05-11T03:00:00+00:00 to 2031-05-13T03:00:00+00:00" in caplog.text
    assert "skipped" in caplog.text


def test_newest_candidate_is_the_most_recently_created_candidate_build(
    sessions: sessionmaker[Session], scheduled: Settings
) -> None:
    runner = ScheduleRunner(scheduled, sessions, HOST_FP)
    with transaction(sessions) as session:
        builds.upsert_build(
            session,
            "litellm[proxy]==1.81.15",
            "litellm",
            "1.81.15",
            "pip",
            "litellm[proxy]==1.81.15",
        )
    created = runner.enqueue("nightly", datetime(2031, 1, 2, 3, 0, tzinfo=UTC))
    assert created is not None
    with transaction(sessions) as session:
        validation = session.get(Validation, created)
        assert validation is not None
        build = session.get(Build, validation.build_id)
        assert build is not None
        assert build.name == "litellm[proxy]==1.81.15"


def test_no_candidate_build_skips_the_fire(
    sessions: sessionmaker[Session], scheduled: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with transaction(sessions) as session:
        for build in session.scalars(select(Build)):
            build.channel = "stable"
    runner = ScheduleRunner(scheduled, sessions, HOST_FP)
    assert runner.enqueue("nightly", datetime(2031, 1, 2, 3, 0, tzinfo=UTC)) is None
    assert "no candidate build" in caplog.text
    assert _fires(sessions, "nightly") == []


def test_a_fire_while_the_previous_one_is_still_queued_is_skipped(
    sessions: sessionmaker[Session], scheduled: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    runner = ScheduleRunner(scheduled, sessions, HOST_FP)
    first = runner.enqueue("tick", datetime(2031, 1, 1, 0, 0, 0, tzinfo=UTC))
    assert first is not None
    assert runner.enqueue("tick", datetime(2031, 1, 1, 0, 0, 1, tzinfo=UTC)) is None
    assert f"validation {first} of the same build is still queued or running" in caplog.text


def test_fire_times_are_the_same_on_every_host() -> None:
    every_ten = trigger_for(ScheduleSettings(interval=600, build="b", scenarios=["s"]))
    now = datetime(2031, 1, 1, 12, 34, 56, tzinfo=UTC)
    assert latest_fire(every_ten, now, 3600) == datetime(2031, 1, 1, 12, 30, tzinfo=UTC)
    cron = trigger_for(ScheduleSettings(cron="*/15 * * * *", build="b", scenarios=["s"]))
    window = list(
        fire_times(
            cron, datetime(2031, 1, 1, 0, 0, tzinfo=UTC), datetime(2031, 1, 1, 1, 0, tzinfo=UTC)
        )
    )
    assert [t.minute for t in window] == [0, 15, 30, 45, 0]
    assert latest_fire(cron, datetime(2031, 1, 1, 0, 10, tzinfo=UTC), 300) is None
