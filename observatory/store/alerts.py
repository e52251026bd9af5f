"""Repository functions for the alert outbox (table ``alerts``).

A row moves ``pending -> sent | failed | logged``; ``failed -> pending`` only by hand
(``retry``). Delivery claims a row with a conditional UPDATE that moves ``next_attempt_at``
forward by a lease and bumps ``attempts``: two delivery loops can both see a due row, only
one UPDATE matches it. ``attempts`` doubles as the fencing token of a claim, so a loop whose
lease ran out cannot overwrite the outcome of the loop that claimed the row after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from observatory.domain import AlertState
from observatory.errors import InputError, NotFoundError
from observatory.notify.alert import AlertDraft
from observatory.store.tables import AlertRow, utcnow


def enqueue(
    session: Session, alert: AlertDraft | None, *, now: datetime | None = None
) -> AlertRow | None:
    """Add ``alert`` to the outbox in the caller's transaction; idempotent on its dedupe key.

    Returns the new row, or the existing row with the same key (never a second one);
    None only when ``alert`` is None (``build_alert`` said this kind is not wanted).
    """
    if alert is None:
        return None
    now = now or utcnow()
    values = {
        "dedupe_key": alert.dedupe_key,
        "kind": alert.kind.value,
        "run_id": alert.run_id,
        "build_id": alert.build_id,
        "payload": alert.payload,
        "state": AlertState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    # INSERT .. ON CONFLICT DO NOTHING: a concurrent duplicate neither fails the caller's
    # transaction (as a unique violation would) nor needs a savepoint.
    dialect = _insert_dialect(session)
    session.execute(dialect.insert(AlertRow).values(**values).on_conflict_do_nothing())
    return session.scalars(select(AlertRow).where(AlertRow.dedupe_key == alert.dedupe_key)).one()


def _insert_dialect(session: Session) -> Any:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql
    if name == "sqlite":
        return sqlite
    raise InputError(f"unsupported database dialect {name!r}; accepted: sqlite, postgresql")


def get_alert(session: Session, alert_id: int) -> AlertRow:
    row = session.get(AlertRow, alert_id)
    if row is None:
        raise NotFoundError(f"unknown alert {alert_id}")
    return row


def list_alerts(
    session: Session, *, state: AlertState | None = None, limit: int = 50
) -> Sequence[AlertRow]:
    """Newest first."""
    query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
    if state is not None:
        query = query.where(AlertRow.state == state.value)
    return session.scalars(query).all()


def due_ids(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Pending alerts whose next attempt is due, oldest due first."""
    query = (
        select(AlertRow.id)
        .where(AlertRow.state == AlertState.PENDING.value, AlertRow.next_attempt_at <= now)
        .order_by(AlertRow.next_attempt_at, AlertRow.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim(session: Session, alert_id: int, now: datetime, lease_until: datetime) -> AlertRow | None:
    """Claim a due alert for one attempt; None when another loop got it first or it is done.

    The returned row's ``attempts`` is this claim's fencing token.
    """
    stmt = (
        update(AlertRow)
        .where(
            AlertRow.id == alert_id,
            AlertRow.state == AlertState.PENDING.value,
            AlertRow.next_attempt_at <= now,
        )
        .values(next_attempt_at=lease_until, attempts=AlertRow.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    if _rowcount(session.execute(stmt)) != 1:
        return None
    row = session.get(AlertRow, alert_id, populate_existing=True)
    return row


def thread_root(session: Session, build_id: int | None, channel: str) -> str | None:
    """The ``thread_ts`` of the earliest sent alert about ``build_id`` in ``channel``."""
    if build_id is None:
        return None
    query = (
        select(AlertRow.thread_ts)
        .where(
            AlertRow.build_id == build_id,
            AlertRow.channel == channel,
            AlertRow.state == AlertState.SENT.value,
            AlertRow.thread_ts.is_not(None),
        )
        .order_by(AlertRow.sent_at, AlertRow.id)
        .limit(1)
    )
    return session.scalar(query)


def mark_sent(
    session: Session, alert_id: int, now: datetime, *, thread_ts: str | None, channel: str | None
) -> None:
    """Slack acknowledged the message: final, whoever holds the claim now.

    Also from failed: a send whose lease ran out may be acknowledged after another loop
    gave up on the row, and a 2xx is the truth about what the channel shows.
    """
    _update(
        session,
        alert_id,
        None,
        allowed=(AlertState.PENDING, AlertState.FAILED),
        state=AlertState.SENT.value,
        sent_at=now,
        next_attempt_at=None,
        last_error=None,
        thread_ts=thread_ts,
        channel=channel,
    )


def mark_logged(session: Session, alert_id: int, attempt: int) -> bool:
    """No Slack configured: the alert went to the log only."""
    return _update(session, alert_id, attempt, state=AlertState.LOGGED.value, next_attempt_at=None)


def reschedule(
    session: Session, alert_id: int, attempt: int, next_attempt_at: datetime, error: str
) -> bool:
    """A transient failure: try again at ``next_attempt_at``. False if the claim was lost."""
    return _update(session, alert_id, attempt, next_attempt_at=next_attempt_at, last_error=error)


def mark_failed(session: Session, alert_id: int, attempt: int, error: str) -> bool:
    """Given up: the alert stays visible (CLI, API) until retried by hand."""
    return _update(
        session,
        alert_id,
        attempt,
        state=AlertState.FAILED.value,
        next_attempt_at=None,
        last_error=error,
    )


def retry(session: Session, alert_id: int, now: datetime) -> AlertRow:
    """Make a failed alert pending and due now."""
    row = get_alert(session, alert_id)
    if row.state != AlertState.FAILED.value:
        raise InputError(f"alert {alert_id} is {row.state}; only failed alerts can be retried")
    row.state = AlertState.PENDING.value
    row.next_attempt_at = now
    session.flush()
    return row


def _update(
    session: Session,
    alert_id: int,
    attempt: int | None,
    allowed: tuple[AlertState, ...] = (AlertState.PENDING,),
    **values: object,
) -> bool:
    conditions = [AlertRow.id == alert_id, AlertRow.state.in_([s.value for s in allowed])]
    if attempt is not None:
        conditions.append(AlertRow.attempts == attempt)
    stmt = (
        update(AlertRow)
        .where(*conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return _rowcount(session.execute(stmt)) == 1


def _rowcount(result: object) -> int:
    return cast(CursorResult[Any], result).rowcount
