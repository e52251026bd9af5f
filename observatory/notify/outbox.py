"""Outbox delivery: pending alerts -> Slack, at least once, never again once acknowledged.

One attempt is three short steps, none of which holds a database transaction across the
network call:

1. claim (conditional UPDATE: due and pending -> next_attempt_at = now + lease,
   attempts + 1); a loop that loses the race skips the row;
2. POST through the Slack adapter;
3. record: sent on a 2xx, otherwise rescheduled (exponential backoff with jitter, or the
   429's Retry-After) or failed once ``slack.give_up_after`` has passed since the alert was
   written (or at once for an error no retry can fix, such as ``channel_not_found``).

A loop killed between 1 and 3 leaves a claimed row that becomes due again when its lease
ends, so nothing is lost. The price is the narrow duplicate window: if Slack accepted the
POST but the acknowledgement never reached us (timeout, kill -9 or database failure between
2 and 3), the alert is sent again after the lease. See docs/alerts.md.
"""

from __future__ import annotations

import logging
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from observatory.errors import ObservatoryError
from observatory.notify.slack import Delivery, SlackTarget, make_target
from observatory.settings import Settings, SlackSettings
from observatory.store import alerts
from observatory.store.db import transaction
from observatory.store.tables import utcnow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
BATCH = 100
LEASE_MARGIN_S = 5.0


@dataclass(frozen=True, slots=True)
class _Job:
    """A claimed alert: what one attempt needs, read inside the claim's transaction."""

    alert_id: int
    attempt: int  # the claim's fencing token
    run_id: int | None
    kind: str
    payload: dict[str, Any]
    created_at: datetime
    thread_ts: str | None


def lease_seconds(slack: SlackSettings) -> float:
    """How long a claim lasts: longer than one send can take.

    slack-sdk's timeout is a socket timeout per operation (connect, then read), so one
    send takes at most about twice the timeout; the margin covers the database steps.
    """
    return 2 * max(1, math.ceil(slack.timeout)) + LEASE_MARGIN_S


def backoff(attempt: int, slack: SlackSettings, rng: random.Random) -> float:
    """Delay before retry number ``attempt`` (1-based): doubling, capped, with equal jitter.

    Jitter spreads retries of alerts that failed together (an outage) so they do not
    return together; half the delay is kept so a retry is never almost immediate.
    """
    delay = min(slack.retry_max, slack.retry_initial * 2.0 ** min(attempt - 1, 30))
    return delay * rng.uniform(0.5, 1.0)


def next_attempt(
    now: datetime,
    deadline: datetime,
    attempt: int,
    delivery: Delivery,
    slack: SlackSettings,
    rng: random.Random,
) -> datetime | None:
    """When to try again after a failed attempt, or None to give up."""
    if not delivery.retryable or now >= deadline:
        return None
    if delivery.retry_after is not None:
        # Slack asked for this pause; sending earlier only earns another 429.
        at = now + timedelta(seconds=delivery.retry_after)
        return at if at <= deadline else None
    # The last retry lands on the deadline rather than past it.
    return min(now + timedelta(seconds=backoff(attempt, slack, rng)), deadline)


def deliver_due(
    sessions: sessionmaker[Session],
    settings: Settings,
    clock: Clock = utcnow,
    *,
    rng: random.Random | None = None,
) -> int:
    """Attempt every due pending alert once; return how many reached a channel or the log."""
    target = make_target(settings.slack)
    rng = rng or random.Random()
    with transaction(sessions) as session:
        ids = alerts.due_ids(session, clock(), BATCH)
    done = 0
    for alert_id in ids:
        job = _claim(sessions, alert_id, settings.slack, target, clock())
        if job is None:
            continue
        if target is None:
            done += _log_only(sessions, job)
            continue
        delivery = target.post(job.payload, job.thread_ts)
        if _record(sessions, settings.slack, target, job, delivery, clock(), rng):
            done += 1
        elif delivery.retry_after is not None:
            break  # rate limited: the rest of the batch would only earn more 429s
    return done


def _claim(
    sessions: sessionmaker[Session],
    alert_id: int,
    slack: SlackSettings,
    target: SlackTarget | None,
    now: datetime,
) -> _Job | None:
    lease_until = now + timedelta(seconds=lease_seconds(slack))
    with transaction(sessions) as session:
        row = alerts.claim(session, alert_id, now, lease_until)
        if row is None:
            return None
        thread_ts = None
        if target is not None and target.threads and target.channel is not None:
            thread_ts = alerts.thread_root(session, row.build_id, target.channel)
        return _Job(
            alert_id=row.id,
            attempt=row.attempts,
            run_id=row.run_id,
            kind=row.kind,
            payload=dict(row.payload),
            created_at=row.created_at,
            thread_ts=thread_ts,
        )


def _log_only(sessions: sessionmaker[Session], job: _Job) -> int:
    text = job.payload.get("text", "")
    log.warning(
        "alert %d (%s, run %s) not sent: Slack is not configured: %s",
        job.alert_id,
        job.kind,
        job.run_id,
        text,
    )
    with transaction(sessions) as session:
        return int(alerts.mark_logged(session, job.alert_id, job.attempt))


def _record(
    sessions: sessionmaker[Session],
    slack: SlackSettings,
    target: SlackTarget,
    job: _Job,
    delivery: Delivery,
    now: datetime,
    rng: random.Random,
) -> bool:
    """Store the attempt's outcome; True when the alert is acknowledged."""
    with transaction(sessions) as session:
        if delivery.acknowledged:
            thread_ts = job.thread_ts or delivery.ts
            alerts.mark_sent(
                session, job.alert_id, now, thread_ts=thread_ts, channel=target.channel
            )
            log.info(
                "alert %d (%s, run %s) sent to %s", job.alert_id, job.kind, job.run_id, target.label
            )
            return True
        error = delivery.error or "unknown error"
        deadline = job.created_at + timedelta(seconds=slack.give_up_after)
        at = next_attempt(now, deadline, job.attempt, delivery, slack, rng)
        if at is None:
            alerts.mark_failed(session, job.alert_id, job.attempt, error)
            log.error(
                "alert %d (%s, run %s) failed after %d attempt(s): %s",
                job.alert_id,
                job.kind,
                job.run_id,
                job.attempt,
                error,
            )
        else:
            alerts.reschedule(session, job.alert_id, job.attempt, at, error)
            log.warning(
                "alert %d attempt %d failed (%s); next at %s",
                job.alert_id,
                job.attempt,
                error,
                at.isoformat(timespec="seconds"),
            )
        return False


def run_delivery_loop(
    sessions: sessionmaker[Session],
    settings: Settings,
    stop_event: threading.Event,
    interval: float = 5.0,
    clock: Clock = utcnow,
) -> None:
    """Deliver due alerts every ``interval`` seconds until ``stop_event`` is set.

    A failing database is logged and tried again next round: alerts wait in the outbox.
    """
    rng = random.Random()
    while not stop_event.is_set():
        try:
            deliver_due(sessions, settings, clock, rng=rng)
        except ObservatoryError as exc:
            log.error("alert delivery round failed: %s", exc)
        stop_event.wait(interval)
