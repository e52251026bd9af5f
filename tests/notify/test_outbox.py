"""Outbox delivery against a real HTTP server on loopback, on SQLite and Postgres.

Time is a test clock advanced to each alert's next attempt, so backoff, Retry-After and
give-up are checked exactly without sleeping; the HTTP traffic (and the 1 s client timeout
of slow answers) is real.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from slack_fake import (
    BOT_TOKEN,
    CHANNEL,
    OK,
    WEBHOOK_PATH,
    FakeSlack,
    api_error,
    enqueue_runs,
    http,
    make_build,
    rows,
    slack_settings,
    slow,
)
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from observatory.notify.outbox import backoff, deliver_due, lease_seconds, run_delivery_loop
from observatory.settings import Settings
from observatory.store.tables import utcnow


class TestClock:
    __test__ = False

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


def drain(sessions: sessionmaker[Session], settings: Settings, clock: TestClock) -> int:
    """Deliver rounds, moving the clock to the next due alert, until nothing is pending."""
    rng = random.Random(7)
    delivered = 0
    for _ in range(50):
        delivered += deliver_due(sessions, settings, clock, rng=rng)
        pending = [r for r in rows(sessions) if r.state == "pending"]
        if not pending:
            return delivered
        due = min(r.next_attempt_at for r in pending if r.next_attempt_at is not None)
        clock.now = max(clock.now, due)
    raise AssertionError("alerts still pending after 50 rounds")


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_every_alert_is_acknowledged_exactly_once_after_transient_failures(
    sessions: sessionmaker[Session], fake_slack: FakeSlack, mode: str
) -> None:
    settings = slack_settings(fake_slack, mode)
    clock = TestClock()
    a, b, c, d = enqueue_runs(sessions, make_build(sessions), 4, now=clock.now)
    busy = api_error("ratelimited", 429) if mode == "bot" else http(429, "rate limited")
    busy = replace(busy, headers={"Retry-After": "7"})
    fake_slack.script = {
        a: [http(500), http(503, "upstream connect error"), OK],
        b: [busy, OK],
        c: [slow(1.6), OK],  # past the 1 s timeout: the message arrives, the ack does not
    }
    assert drain(sessions, settings, clock) == 4
    for run in (a, b, c, d):
        assert fake_slack.acked(run) == 1, f"run {run}: {fake_slack.received_for(run)}"
    assert [len(fake_slack.received_for(r)) for r in (a, b, c, d)] == [3, 2, 2, 1]
    by_run = {r.run_id: r for r in rows(sessions)}
    assert {r.state for r in by_run.values()} == {"sent"}
    assert [by_run[r].attempts for r in (a, b, c, d)] == [3, 2, 2, 1]
    assert all(r.last_error is None and r.sent_at is not None for r in by_run.values())


def test_retry_after_is_honoured_to_the_second(
    sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    settings = slack_settings(fake_slack)
    clock = TestClock()
    [run] = enqueue_runs(sessions, make_build(sessions), 1, now=clock.now)
    fake_slack.script = {run: [http(429, "rate_limited", **{"Retry-After": "42"}), OK]}
    assert deliver_due(sessions, settings, clock) == 0
    row = rows(sessions)[0]
    assert row.next_attempt_at == clock.now + timedelta(seconds=42)
    assert row.last_error == "HTTP 429: rate_limited"
    clock.now += timedelta(seconds=41)
    assert deliver_due(sessions, settings, clock) == 0  # not yet
    assert len(fake_slack.received) == 1
    clock.now += timedelta(seconds=1)
    assert deliver_due(sessions, settings, clock) == 1
    assert fake_slack.acked(run) == 1


def test_a_429_stops_the_round_so_the_rest_wait(
    sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    clock = TestClock()
    first, *_ = enqueue_runs(sessions, make_build(sessions), 3, now=clock.now)
    fake_slack.script = {first: [http(429, "slow down", **{"Retry-After": "5"})]}
    assert deliver_due(sessions, slack_settings(fake_slack), clock) == 0
    assert len(fake_slack.received) == 1
    assert [r.state for r in rows(sessions)] == ["pending"] * 3


def test_backoff_doubles_with_jitter_up_to_the_cap(
    sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    settings = slack_settings(fake_slack, retry_initial=2.0, retry_max=10.0)
    clock = TestClock()
    [run] = enqueue_runs(sessions, make_build(sessions), 1, now=clock.now)
    fake_slack.script = {run: [http(500)] * 5}
    delays = []
    for _ in range(5):
        sent_at = clock.now
        deliver_due(sessions, settings, clock)
        clock.now = rows(sessions)[0].next_attempt_at or clock.now
        delays.append((clock.now - sent_at).total_seconds())
    for attempt, delay in enumerate(delays, start=1):
        full = min(10.0, 2.0 * 2 ** (attempt - 1))
        assert full / 2 <= delay <= full, (attempt, delays)
    rng = random.Random(1)
    spread = {round(backoff(3, settings.slack, rng), 3) for _ in range(20)}
    assert len(spread) > 10  # jitter: alerts that failed together do not return together


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_gives_up_after_give_up_after_and_marks_failed(
    sessions: sessionmaker[Session], fake_slack: FakeSlack, mode: str
) -> None:
    settings = slack_settings(fake_slack, mode, give_up_after=60.0, retry_initial=5.0)
    clock = TestClock()
    start = clock.now
    [run] = enqueue_runs(sessions, make_build(sessions), 1, now=start)
    fake_slack.default = http(500, "boom") if mode == "webhook" else api_error("internal_error")
    assert drain(sessions, settings, clock) == 0
    row = rows(sessions)[0]
    assert row.state == "failed"
    assert row.next_attempt_at is None
    assert row.attempts == len(fake_slack.received_for(run)) >= 4
    assert clock.now == start + timedelta(seconds=60)  # the last attempt lands on the deadline
    expected = "HTTP 500: boom" if mode == "webhook" else "HTTP 200: internal_error"
    assert row.last_error == expected
    assert fake_slack.acked(run) == 0


@pytest.mark.parametrize(
    ("mode", "answer", "error"),
    [
        ("webhook", http(404, "no_service"), "HTTP 404: no_service"),
        ("webhook", http(400, "invalid_blocks"), "HTTP 400: invalid_blocks"),
        ("bot", api_error("channel_not_found"), "HTTP 200: channel_not_found"),
        ("bot", api_error("not_in_channel"), "HTTP 200: not_in_channel"),
    ],
)
def test_errors_no_retry_can_fix_fail_at_once(
    sessions: sessionmaker[Session], fake_slack: FakeSlack, mode: str, answer: object, error: str
) -> None:
    fake_slack.default = answer  # type: ignore[assignment]
    enqueue_runs(sessions, make_build(sessions), 1)
    assert deliver_due(sessions, slack_settings(fake_slack, mode), TestClock()) == 0
    row = rows(sessions)[0]
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, error)


def test_bot_token_threads_follow_ups_on_the_same_build(
    sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    settings = slack_settings(fake_slack, "bot")
    clock = TestClock()
    build_a, build_b = (
        make_build(sessions, "litellm-1.83.0"),
        make_build(sessions, "litellm-1.84.0"),
    )
    first, second = enqueue_runs(sessions, build_a, 2, now=clock.now)
    [other] = enqueue_runs(sessions, build_b, 1, now=clock.now)
    assert drain(sessions, settings, clock) == 3
    [root] = fake_slack.received_for(first)
    assert "thread_ts" not in root.body
    assert root.body["channel"] == CHANNEL
    assert fake_slack.received_for(second)[0].body["thread_ts"] == root.ts
    assert "thread_ts" not in fake_slack.received_for(other)[0].body
    # A later follow-up (a new run of build A) still finds the root in the database.
    [later] = enqueue_runs(sessions, build_a, 1, now=clock.now)
    assert drain(sessions, settings, clock) == 1
    assert fake_slack.received_for(later)[0].body["thread_ts"] == root.ts
    stored = {r.run_id: r for r in rows(sessions)}
    assert {stored[r].thread_ts for r in (first, second, later)} == {root.ts}
    assert stored[other].thread_ts == fake_slack.received_for(other)[0].ts
    assert {r.channel for r in stored.values()} == {CHANNEL}


def test_webhook_messages_are_never_threaded(
    sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    enqueue_runs(sessions, make_build(sessions), 2)
    assert drain(sessions, slack_settings(fake_slack), TestClock()) == 2
    assert all("thread_ts" not in r.body for r in fake_slack.received)
    assert [r.endpoint for r in fake_slack.received] == ["webhook", "webhook"]
    assert {r.thread_ts for r in rows(sessions)} == {None}


def test_without_slack_alerts_are_logged_and_marked_logged(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    runs = enqueue_runs(sessions, make_build(sessions), 2)
    caplog.set_level(logging.INFO)
    assert deliver_due(sessions, slack_settings(None), TestClock()) == 2
    assert [r.state for r in rows(sessions)] == ["logged", "logged"]
    assert deliver_due(sessions, slack_settings(None), TestClock()) == 0  # logged is final
    for run in runs:
        assert f"run #{run}" in caplog.text
    assert "Slack is not configured" in caplog.text


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_no_secret_reaches_logs_or_database(
    sessions: sessionmaker[Session],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # everything, slack-sdk's own debug output included
    settings = slack_settings(fake_slack, mode, give_up_after=30.0)
    clock = TestClock()
    runs = enqueue_runs(sessions, make_build(sessions), 3, now=clock.now)
    fake_slack.script = {
        runs[0]: [http(500, f"echo {WEBHOOK_PATH} {BOT_TOKEN}"), slow(1.5), OK],
        runs[1]: [http(404, f"no_service for {fake_slack.webhook_url}")],
    }
    drain(sessions, settings, clock)
    assert fake_slack.acked(runs[0]) == 1
    _assert_secret_free(sessions, caplog.text)
    assert "<redacted>" in " ".join(str(r.last_error) for r in rows(sessions))


def test_unusable_webhook_url_fails_without_showing_it(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings.model_validate(
        {"slack": {"webhook_url": f"ftp://127.0.0.1{WEBHOOK_PATH}", "timeout": 1}}
    )
    enqueue_runs(sessions, make_build(sessions), 1)
    assert deliver_due(sessions, settings, TestClock()) == 0
    row = rows(sessions)[0]
    assert row.state == "failed"
    assert "Invalid URL detected: <redacted>" in (row.last_error or "")
    _assert_secret_free(sessions, caplog.text)


def test_unreachable_slack_is_retried(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings.model_validate(
        {"slack": {"webhook_url": f"http://127.0.0.1:9{WEBHOOK_PATH}", "timeout": 1}}
    )
    enqueue_runs(sessions, make_build(sessions), 1)
    assert deliver_due(sessions, settings, TestClock()) == 0
    row = rows(sessions)[0]
    assert row.state == "pending"
    assert row.last_error is not None
    assert "Connection refused" in row.last_error
    _assert_secret_free(sessions, caplog.text)


def _assert_secret_free(sessions: sessionmaker[Session], logs: str) -> None:
    secrets = (WEBHOOK_PATH, "hooksecretXyZ123", BOT_TOKEN, "tokensecret")
    with sessions() as session:
        dump = " ".join(
            str(tuple(row)) for row in session.execute(text("SELECT * FROM alerts")).all()
        )
    for secret in secrets:
        assert secret not in logs
        assert secret not in dump


def test_two_delivery_loops_never_send_the_same_alert_twice(
    sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    settings = slack_settings(fake_slack)
    runs = enqueue_runs(sessions, make_build(sessions), 16)
    fake_slack.delay = 0.03  # keep requests in flight so the loops overlap
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def loop() -> None:
        try:
            barrier.wait(timeout=10)
            deliver_due(sessions, settings)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert sorted(r.run for r in fake_slack.received) == sorted(runs)
    assert {r.state for r in rows(sessions)} == {"sent"}
    assert {r.attempts for r in rows(sessions)} == {1}


def test_run_delivery_loop_delivers_and_stops_when_asked(
    sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    stop = threading.Event()
    settings = slack_settings(fake_slack)
    thread = threading.Thread(
        target=run_delivery_loop, args=(sessions, settings, stop, 0.05), daemon=True
    )
    thread.start()
    try:
        runs = enqueue_runs(sessions, make_build(sessions), 3)
        deadline = utcnow() + timedelta(seconds=20)
        while utcnow() < deadline and any(r.state != "sent" for r in rows(sessions)):
            stop.wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert sorted(r.run for r in fake_slack.received) == sorted(runs)


def test_lease_outlasts_a_send() -> None:
    slack = slack_settings(None).slack
    assert lease_seconds(slack) > 2 * slack.timeout
