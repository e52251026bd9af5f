"""The outbox repository on SQLite and Postgres: idempotent enqueue, exclusive claims."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from slack_fake import context, enqueue_runs, make_build, make_run, rows, utc
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import AlertState
from observatory.errors import InputError, NotFoundError
from observatory.notify.alert import AlertKind
from observatory.notify.payload import build_alert
from observatory.settings import SlackSettings
from observatory.store import alerts
from observatory.store.db import transaction
from observatory.store.tables import Run

T0 = utc(2030, 1, 1, 12, 0, 0)


def test_enqueue_is_idempotent_on_the_dedupe_key(sessions: sessionmaker[Session]) -> None:
    build_id = make_build(sessions)
    with transaction(sessions) as session:
        run = make_run(session, build_id)
        draft = build_alert(context(run.id, build_id), SlackSettings())
        first = alerts.enqueue(session, draft, now=T0)
        again = alerts.enqueue(session, draft, now=T0 + timedelta(hours=1))
        assert first is not None
        assert again is not None
        assert again.id == first.id
    with transaction(sessions) as session:  # and in a later transaction too
        assert alerts.enqueue(session, draft) is not None
    stored = rows(sessions)
    assert len(stored) == 1
    row = stored[0]
    assert (row.state, row.attempts, row.kind) == ("pending", 0, "regression")
    assert row.created_at == T0
    assert row.next_attempt_at == T0
    assert row.payload["blocks"][0]["type"] == "header"
    assert alerts.enqueue(sessions(), None) is None


def test_alert_rolls_back_with_the_verdict(sessions: sessionmaker[Session]) -> None:
    """Same transaction: a verdict that is not stored leaves no alert behind."""
    build_id = make_build(sessions)

    def store_verdict_then_fail() -> None:
        with transaction(sessions) as session:
            run = make_run(session, build_id)
            run.verdict = "regression"
            alerts.enqueue(session, build_alert(context(run.id, build_id), SlackSettings()))
            raise RuntimeError("analysis step failed after the alert was added")

    with pytest.raises(RuntimeError, match="analysis step failed"):
        store_verdict_then_fail()
    assert rows(sessions) == []
    with transaction(sessions) as session:
        assert session.query(Run).count() == 0


def test_concurrent_enqueue_of_one_key_writes_one_row(sessions: sessionmaker[Session]) -> None:
    build_id = make_build(sessions)
    with transaction(sessions) as session:
        run_id = make_run(session, build_id).id
    draft = build_alert(context(run_id, build_id), SlackSettings())
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def write() -> None:
        try:
            barrier.wait(timeout=10)
            with transaction(sessions) as session:
                alerts.enqueue(session, draft)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert len(rows(sessions)) == 1


def test_only_one_claim_wins_and_the_attempt_fences_late_writers(
    sessions: sessionmaker[Session],
) -> None:
    build_id = make_build(sessions)
    [run_id] = enqueue_runs(sessions, build_id, 1, now=T0)
    alert_id = rows(sessions)[0].id
    lease = T0 + timedelta(seconds=30)
    with transaction(sessions) as session:
        assert alerts.due_ids(session, T0) == [alert_id]
        first = alerts.claim(session, alert_id, T0, lease)
        assert first is not None
        assert first.attempts == 1
        assert first.run_id == run_id
    with transaction(sessions) as session:
        assert alerts.claim(session, alert_id, T0, lease) is None  # leased
        assert alerts.due_ids(session, T0 + timedelta(seconds=29)) == []
    later = T0 + timedelta(seconds=31)  # the first claimer's lease ran out
    with transaction(sessions) as session:
        second = alerts.claim(session, alert_id, later, later + timedelta(seconds=30))
        assert second is not None
        assert second.attempts == 2
    with transaction(sessions) as session:  # the first claimer reports late: ignored
        assert not alerts.reschedule(session, alert_id, 1, later, "HTTP 500")
        assert not alerts.mark_failed(session, alert_id, 1, "HTTP 500")
        assert alerts.reschedule(session, alert_id, 2, later + timedelta(seconds=5), "HTTP 503")
    row = rows(sessions)[0]
    assert (row.state, row.attempts, row.last_error) == ("pending", 2, "HTTP 503")


def test_concurrent_claims_of_one_row_have_one_winner(sessions: sessionmaker[Session]) -> None:
    build_id = make_build(sessions)
    enqueue_runs(sessions, build_id, 1, now=T0)
    alert_id = rows(sessions)[0].id
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def try_claim() -> None:
        barrier.wait(timeout=10)
        with transaction(sessions) as session:
            wins.append(alerts.claim(session, alert_id, T0, T0 + timedelta(minutes=1)) is not None)

    threads = [threading.Thread(target=try_claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(wins) == [False, False, False, True]
    assert rows(sessions)[0].attempts == 1


def test_retry_moves_failed_back_to_pending_only(sessions: sessionmaker[Session]) -> None:
    build_id = make_build(sessions)
    enqueue_runs(sessions, build_id, 1, now=T0)
    alert_id = rows(sessions)[0].id
    with transaction(sessions) as session, pytest.raises(InputError, match="is pending"):
        alerts.retry(session, alert_id, T0)
    with transaction(sessions) as session:
        assert alerts.claim(session, alert_id, T0, T0 + timedelta(seconds=30)) is not None
        assert alerts.mark_failed(session, alert_id, 1, "HTTP 404: no_service")
    later = T0 + timedelta(hours=2)
    with transaction(sessions) as session:
        row = alerts.retry(session, alert_id, later)
        assert (row.state, row.next_attempt_at, row.attempts) == ("pending", later, 1)
        assert alerts.due_ids(session, later) == [alert_id]
    with transaction(sessions) as session, pytest.raises(NotFoundError, match="unknown alert 999"):
        alerts.retry(session, 999, later)


def test_thread_root_is_the_earliest_sent_alert_of_the_build_in_the_channel(
    sessions: sessionmaker[Session],
) -> None:
    build_a, build_b = (
        make_build(sessions, "litellm-1.83.0"),
        make_build(sessions, "litellm-1.84.0"),
    )
    enqueue_runs(sessions, build_a, 2, now=T0)
    enqueue_runs(sessions, build_b, 1, now=T0)
    a1, a2, b1 = (r.id for r in rows(sessions))
    with transaction(sessions) as session:
        assert alerts.thread_root(session, build_a, "#releases") is None
        for alert_id in (a1, a2, b1):
            alerts.claim(session, alert_id, T0, T0 + timedelta(seconds=30))
        alerts.mark_sent(session, a1, T0, thread_ts="100.1", channel="#releases")
        alerts.mark_sent(
            session, a2, T0 + timedelta(seconds=1), thread_ts="100.1", channel="#releases"
        )
        alerts.mark_sent(session, b1, T0, thread_ts="200.1", channel="#releases")
    with transaction(sessions) as session:
        assert alerts.thread_root(session, build_a, "#releases") == "100.1"
        assert alerts.thread_root(session, build_b, "#releases") == "200.1"
        assert alerts.thread_root(session, build_a, "#other") is None
        assert alerts.thread_root(session, None, "#releases") is None


def test_list_filters_by_state_newest_first(sessions: sessionmaker[Session]) -> None:
    build_id = make_build(sessions)
    enqueue_runs(sessions, build_id, 3, now=T0)
    ids = [r.id for r in rows(sessions)]
    with transaction(sessions) as session:
        alerts.claim(session, ids[0], T0, T0 + timedelta(seconds=30))
        alerts.mark_logged(session, ids[0], 1)
    with transaction(sessions) as session:
        assert [r.id for r in alerts.list_alerts(session)] == ids[::-1]
        pending = alerts.list_alerts(session, state=AlertState.PENDING)
        assert [r.id for r in pending] == ids[:0:-1]
        assert [r.id for r in alerts.list_alerts(session, state=AlertState.LOGGED)] == [ids[0]]
        assert len(alerts.list_alerts(session, limit=1)) == 1


def test_every_alert_kind_fits_the_kind_column(sessions: sessionmaker[Session]) -> None:
    build_id = make_build(sessions)
    everything = SlackSettings(notify_on=[k.value for k in AlertKind])
    with transaction(sessions) as session:
        for kind in AlertKind:
            run = make_run(session, build_id)
            alerts.enqueue(session, build_alert(context(run.id, build_id, kind), everything))
    assert sorted(r.kind for r in rows(sessions)) == sorted(k.value for k in AlertKind)
