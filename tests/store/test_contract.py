"""The store contract: the same tests on SQLite and on the real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import Channel, ErrorSample, ResourceSample, RunStatus, Window
from observatory.errors import NotFoundError, StoreError
from observatory.settings import BuildSettings
from observatory.store import builds, runs, samples
from observatory.store.db import transaction
from observatory.store.tables import Build, Run

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def make_run(session: Session, build: Build, scenario: str = "chat") -> Run:
    run = Run(
        build_id=build.id,
        scenario=scenario,
        profile={"model": "closed", "users": 1},
        duration_s=60.0,
        warmup_s=10.0,
        window_s=10.0,
    )
    session.add(run)
    session.flush()
    return run


def window(series: str, name: str, minute: int, count: int = 10) -> Window:
    return Window(
        series=series, name=name, start=T0 + timedelta(minutes=minute), length_s=10.0,
        count=count, failures=1, histogram="HISTFAAAA", p50=1.0, p90=2.0, p95=3.0,
        p99=4.0, p999=5.0, max=6.0,
    )  # fmt: skip


def test_configured_builds_sync_and_promote(sessions: sessionmaker[Session]) -> None:
    config = {
        "old": BuildSettings(
            gateway="litellm", pip="litellm[proxy]==1.81.9", channel=Channel.STABLE
        ),
        "new": BuildSettings(gateway="litellm", url="http://127.0.0.1:4000", version="dev"),
    }
    with transaction(sessions) as session:
        builds.sync_configured(session, config)
        builds.sync_configured(session, config)  # idempotent
    with transaction(sessions) as session:
        rows = {b.name: b for b in builds.list_builds(session)}
        assert set(rows) == {"old", "new"}
        assert rows["old"].channel == "stable"
        assert rows["old"].promoted_at is not None
        assert rows["new"].channel == "candidate"
        assert rows["new"].provision_kind == "url"
        builds.promote(session, "new")
    with transaction(sessions) as session:
        promoted = builds.get_build(session, "new")
        assert promoted.channel == "stable"
        assert promoted.promoted_at is not None
        assert promoted.promoted_at.tzinfo is not None
        with pytest.raises(NotFoundError, match="unknown build 'ghost'; known: "):
            builds.get_build(session, "ghost")


def test_runs_round_trip_with_aware_datetimes(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        build = builds.upsert_build(session, "b", "litellm", "1.0", "url", "http://127.0.0.1:1")
        first = make_run(session, build)
        make_run(session, build, scenario="mixed")
        first.status = RunStatus.RUNNING
        first.started_at = T0
        first.parameters = {"users": 3, "nested": {"a": [1, 2]}}
        first_id = first.id
    with transaction(sessions) as session:
        got = runs.get_run(session, first_id)
        assert got.started_at == T0
        assert got.parameters == {"users": 3, "nested": {"a": [1, 2]}}
        assert [r.scenario for r in runs.list_runs(session)] == ["mixed", "chat"]
        assert [r.id for r in runs.list_runs(session, status="running")] == [first_id]
        with pytest.raises(NotFoundError, match="unknown run 999"):
            runs.get_run(session, 999)


def test_windows_upsert_is_idempotent(sessions: sessionmaker[Session]) -> None:
    batch = [window("latency", "chat", m) for m in range(3)] + [window("ttft", "chat", 0)]
    with transaction(sessions) as session:
        build = builds.upsert_build(session, "b", "litellm", "1.0", "url", "http://127.0.0.1:1")
        run_id = make_run(session, build).id
        assert samples.add_windows(session, run_id, batch) == 4
    with transaction(sessions) as session:
        # a replayed spool: the same windows again, plus one new
        again = [*batch, window("latency", "chat", 3)]
        assert samples.add_windows(session, run_id, again) == 1
    with transaction(sessions) as session:
        frame = samples.windows_frame(session, run_id, T0)
    assert len(frame) == 5
    assert sorted(frame.loc[frame.series == "latency", "t"]) == [0.0, 60.0, 120.0, 180.0]


def test_error_and_resource_samples_are_idempotent(sessions: sessionmaker[Session]) -> None:
    errors = [ErrorSample("chat", T0, "http_500", 3, ("boom", "bang"))]
    resources = [
        ResourceSample(T0 + timedelta(seconds=s), "gateway", 100.0 + s, 80.0, 12.5, 4, 20, 3, 1)
        for s in (0, 5, 10)
    ] + [ResourceSample(T0, "loadgen", 50.0, None, None, None, None, None, None)]
    with transaction(sessions) as session:
        build = builds.upsert_build(session, "b", "litellm", "1.0", "url", "http://127.0.0.1:1")
        run_id = make_run(session, build).id
        assert samples.add_error_samples(session, run_id, errors) == 1
        assert samples.add_resource_samples(session, run_id, resources) == 4
    with transaction(sessions) as session:
        assert samples.add_error_samples(session, run_id, errors) == 0
        assert samples.add_resource_samples(session, run_id, resources) == 0
        stored = samples.error_messages(session, run_id)
        frame = samples.resources_frame(session, run_id, T0)
    assert stored[0].messages == ["boom", "bang"]
    gateway = frame[frame.role == "gateway"]
    assert list(gateway.t) == [0.0, 5.0, 10.0]
    assert frame[frame.role == "loadgen"].uss_mb.isna().all()  # unavailable stays unavailable


def test_failure_signatures_share_their_row_and_come_back_with_exact_counts(
    sessions: sessionmaker[Session],
) -> None:
    closed = "Cannot send a request, as the client has been closed"
    errors = [  # one window's signatures, as the load generator hands them over
        ErrorSample("chat", T0, "http_500", 7, (f"{closed} (request 41)",)),
        ErrorSample("chat", T0, "http_500", 2, ("upstream 10.0.0.7:8080 reset",)),
        ErrorSample("chat", T0, "timeout", 1, ()),  # the catch-all: no sample
        ErrorSample("chat", T0 + timedelta(seconds=10), "http_500", 3, ("x 1", "x 2")),  # older
    ]
    with transaction(sessions) as session:
        build = builds.upsert_build(session, "b", "litellm", "1.0", "url", "http://127.0.0.1:1")
        run_id = make_run(session, build).id
        assert samples.add_error_samples(session, run_id, errors) == 3  # one row per category
    with transaction(sessions) as session:
        assert samples.add_error_samples(session, run_id, errors) == 0  # replays add nothing
        frame = samples.errors_frame(session, run_id, T0)
        [row] = [r for r in samples.error_messages(session, run_id) if r.count == 9]
        assert samples.sample_messages(row.messages) == [
            f"{closed} (request 41)",
            "upstream 10.0.0.7:8080 reset",
        ]
    got = sorted(zip(frame.t, frame.category, frame["count"], frame.message, strict=True))
    assert got == [
        (0.0, "http_500", 2, "upstream <addr> reset"),
        (0.0, "http_500", 7, f"{closed} (request <n>)"),
        (0.0, "timeout", 1, ""),
        (10.0, "http_500", 3, "x <n>"),  # plain messages that share one signature
    ]


def _insert_duplicate(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        builds.upsert_build(session, "b", "litellm", "1.0", "url", "x")
        session.add(Build(name="b", gateway="g", version="1", provision_kind="url", provision="y"))
        session.flush()


def test_database_errors_become_store_errors_and_roll_back(
    sessions: sessionmaker[Session],
) -> None:
    with pytest.raises(StoreError, match="database error: IntegrityError"):
        _insert_duplicate(sessions)
    with transaction(sessions) as session:
        assert builds.list_builds(session) == []  # nothing half-written
