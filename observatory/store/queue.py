"""The run queue: claiming queued runs and taking back runs whose worker stopped.

A claimed run carries its worker (``claimed_by``) and a lease (``lease_until``) that the
worker's heartbeat keeps extending. Claiming is safe with several workers and several hosts
on one database:

- Postgres: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the oldest claimable row nobody else
  is claiming, then an UPDATE in the same transaction takes it;
- SQLite: one conditional ``UPDATE ... WHERE id = (oldest claimable) AND status = 'queued'
  RETURNING id``; SQLite runs writers one at a time, so two claimers never see the same row
  as queued.

A queued run that already has a ``claimed_by`` is held: the CLI holds the runs it planned
and executes itself, so no worker sharing the database claims them; its lease expires like
an active run's if the CLI dies. Every change of a run's state is a conditional UPDATE on
the status and holder it expects (``begin``, ``advance``): of two racing writers one wins
and the other learns it lost. Lease times come from the database's clock (``db_now``).

Order: oldest first by id. A validation queues its baseline run before its candidate (lower
id), and a candidate is not claimable while its baseline run is queued or active, so a
second host never starts a candidate before the baseline it will be compared with.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from observatory.domain import ACTIVE_STATUSES, RunStatus
from observatory.errors import ObservatoryError
from observatory.store.clock import db_now
from observatory.store.tables import Run

PENDING = (RunStatus.QUEUED, *ACTIVE_STATUSES)
HELD = PENDING  # the statuses in which a holder's lease counts


class LostRunError(ObservatoryError):
    """A run is no longer held as expected: recovery took it back, or it ended meanwhile."""


@dataclass(frozen=True, slots=True)
class ExpiredRun:
    """An active run taken back from a worker that stopped heartbeating."""

    run_id: int
    owner: str | None  # the worker that held it
    heartbeat_at: datetime | None  # its last heartbeat


def _claimable(host_fingerprint: str | None) -> Select[int]:
    """The id of the oldest claimable run (own aliases: safe inside an UPDATE's WHERE)."""
    run = aliased(Run, name="claimable")
    base = aliased(Run, name="claimable_baseline")
    waiting = exists().where(base.id == run.baseline_run_id, base.status.in_(PENDING))
    query = select(run.id).where(run.status == RunStatus.QUEUED, run.claimed_by.is_(None), ~waiting)
    if host_fingerprint is not None:
        # Baselines are compared only on like hosts: a run executes on the host that planned it.
        query = query.where(
            or_(run.host_fingerprint == host_fingerprint, run.host_fingerprint.is_(None))
        )
    return query.order_by(run.id).limit(1)


def _at(now: datetime | None, offset_s: float = 0.0) -> Any:
    """``now`` plus an offset; the database's clock unless a time is given explicitly."""
    return db_now(offset_s) if now is None else now + timedelta(seconds=offset_s)


def _lease_values(lease_s: float, now: datetime | None = None) -> dict[str, Any]:
    return {"heartbeat_at": _at(now), "lease_until": _at(now, lease_s)}


def _claim_values(worker: str, lease_s: float, now: datetime | None) -> dict[str, Any]:
    return {"status": RunStatus.PROVISIONING, "claimed_by": worker, **_lease_values(lease_s, now)}


def alongside_of(session: Session, baseline_id: int) -> int | None:
    """The queued candidate planned to be measured side by side with this baseline run."""
    query = (
        select(Run.id)
        .where(
            Run.baseline_run_id == baseline_id,
            Run.baseline_request == "alongside",
            Run.status == RunStatus.QUEUED,
        )
        .order_by(Run.id)
        .limit(1)
    )
    return session.scalars(query).first()


def claim_alongside(
    session: Session, baseline: Run, worker: str, lease_s: float, *, now: datetime | None = None
) -> int | None:
    """Claim the candidate to measure side by side with ``baseline`` (just claimed), if any."""
    partner = alongside_of(session, baseline.id)
    if partner is None:
        return None
    taken = session.execute(
        update(Run)
        .where(Run.id == partner, Run.status == RunStatus.QUEUED, Run.claimed_by.is_(None))
        .values(**_claim_values(worker, lease_s, now))
    )
    return partner if getattr(taken, "rowcount", 0) == 1 else None


def claim_next(
    session: Session,
    worker: str,
    lease_s: float,
    *,
    host_fingerprint: str | None = None,
    now: datetime | None = None,
) -> Run | None:
    """Claim the oldest claimable queued run for ``worker`` in the caller's transaction."""
    values = _claim_values(worker, lease_s, now)
    if session.get_bind().dialect.name == "postgresql":
        run_id = _claim_postgres(session, host_fingerprint, values)
    else:
        run_id = _claim_sqlite(session, host_fingerprint, values)
    return None if run_id is None else session.get(Run, run_id, populate_existing=True)


def _claim_postgres(
    session: Session, host_fingerprint: str | None, values: dict[str, Any]
) -> int | None:
    # SKIP LOCKED: a row another claimer holds is passed over, not waited for.
    locked = _claimable(host_fingerprint).with_for_update(skip_locked=True)
    run_id = session.scalar(locked)
    if run_id is not None:
        session.execute(
            update(Run).where(Run.id == run_id).values(**values),
            execution_options={"synchronize_session": False},
        )
    return run_id


def _claim_sqlite(
    session: Session, host_fingerprint: str | None, values: dict[str, Any]
) -> int | None:
    statement = (
        update(Run)
        .where(
            Run.id == _claimable(host_fingerprint).scalar_subquery(),
            Run.status == RunStatus.QUEUED,
            Run.claimed_by.is_(None),
        )
        .values(**values)
        .returning(Run.id)
    )
    run_id: int | None = session.scalar(statement, execution_options={"synchronize_session": False})
    return run_id


def _held() -> ColumnElement[bool]:
    """Runs somebody holds: active ones, and queued ones the CLI holds."""
    queued = and_(Run.status == RunStatus.QUEUED, Run.claimed_by.is_not(None))
    return or_(Run.status.in_(ACTIVE_STATUSES), queued)


def _expired(now: datetime | None, dead_owners: Collection[str]) -> Any:
    lapsed = or_(Run.lease_until.is_(None), Run.lease_until < _at(now))
    if dead_owners:
        lapsed = or_(lapsed, Run.claimed_by.in_(list(dead_owners)))
    return and_(_held(), lapsed)


def expire_leases(
    session: Session,
    now: datetime | None = None,
    *,
    recoverer: str = "recovery",
    lease_s: float = 60.0,
    dead_owners: Collection[str] = (),
) -> list[ExpiredRun]:
    """Take back the held runs whose lease expired (or whose owner is known dead).

    Each is handed to ``recoverer`` with a fresh lease in the caller's transaction, so when
    several hosts recover at once exactly one gets each run; should the recoverer die before
    it concluded a run, that lease expires in turn and another recovery takes it.
    """
    condition = _expired(now, dead_owners)
    query = select(Run.id, Run.claimed_by, Run.heartbeat_at).where(condition).order_by(Run.id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    found = {
        row.id: ExpiredRun(row.id, row.claimed_by, row.heartbeat_at)
        for row in session.execute(query)
    }
    if not found:
        return []
    taken = session.scalars(
        update(Run)
        .where(Run.id.in_(list(found)), condition)
        .values(claimed_by=recoverer, lease_until=_at(now, lease_s))
        .returning(Run.id),
        execution_options={"synchronize_session": False},
    ).all()
    return [found[run_id] for run_id in sorted(taken)]


def renew_lease(
    session: Session, run_id: int, worker: str, lease_s: float, now: datetime | None = None
) -> bool:
    """Extend ``worker``'s lease on a run it holds; False when it no longer holds the run.

    Fenced on ``claimed_by``: once recovery took a run back, its old worker cannot extend
    (and so cannot keep) it any more.
    """
    renewed = session.scalar(
        update(Run)
        .where(Run.id == run_id, Run.claimed_by == worker, Run.status.in_(HELD))
        .values(lease_until=_at(now, lease_s))
        .returning(Run.id),
        execution_options={"synchronize_session": False},
    )
    return renewed is not None


def hold(session: Session, run_ids: Collection[int], owner: str, lease_s: float) -> list[int]:
    """Hold queued, unclaimed runs for ``owner`` (the CLI): no worker claims them then."""
    held = session.scalars(
        update(Run)
        .where(Run.id.in_(list(run_ids)), Run.status == RunStatus.QUEUED, Run.claimed_by.is_(None))
        .values(claimed_by=owner, lease_until=db_now(lease_s))
        .returning(Run.id),
        execution_options={"synchronize_session": False},
    ).all()
    return sorted(held)


def begin(session: Session, run_id: int, owner: str, lease_s: float) -> bool:
    """Move a run ``owner`` claimed or holds (or an unclaimed queued one) to provisioning."""
    ours = and_(Run.claimed_by == owner, Run.status.in_((RunStatus.QUEUED, RunStatus.PROVISIONING)))
    free = and_(Run.claimed_by.is_(None), Run.status == RunStatus.QUEUED)
    values = _claim_values(owner, lease_s, None)
    return _changed(session, update(Run).where(Run.id == run_id, or_(ours, free)).values(values))


def advance(
    session: Session, run_id: int, owner: str, expected: Collection[str], **values: Any
) -> bool:
    """Change a run ``owner`` holds in one of the ``expected`` statuses; False if it lost it."""
    condition = and_(Run.id == run_id, Run.claimed_by == owner, Run.status.in_(list(expected)))
    return _changed(session, update(Run).where(condition).values(**values))


def require(
    session: Session, run_id: int, owner: str, expected: Collection[str], **values: Any
) -> None:
    """``advance``, or ``LostRunError`` saying who holds the run now."""
    if not advance(session, run_id, owner, expected, **values):
        now = holder(session, run_id)
        raise LostRunError(f"run {run_id} is no longer ours ({owner}): it is {now}")


def _changed(session: Session, statement: Any) -> bool:
    changed = session.scalar(
        statement.returning(Run.id), execution_options={"synchronize_session": False}
    )
    return changed is not None


def abandon(session: Session, owner: str, reason: str) -> list[int]:
    """End the queued runs ``owner`` holds but will not execute (e.g. the CLI stopped)."""
    ended = session.scalars(
        update(Run)
        .where(Run.claimed_by == owner, Run.status == RunStatus.QUEUED)
        .values(status=RunStatus.ABORTED, end_reason=reason, ended_at=db_now(), lease_until=None)
        .returning(Run.id),
        execution_options={"synchronize_session": False},
    ).all()
    return sorted(ended)


def holder(session: Session, run_id: int) -> str:
    """Who holds a run and in which status, for messages about a lost condition."""
    row = session.execute(select(Run.status, Run.claimed_by).where(Run.id == run_id)).first()
    if row is None:
        return "deleted"
    return f"{row.status}, held by {row.claimed_by or 'nobody'}"


def ended_without_report(session: Session, settle_s: float, limit: int = 20) -> list[int]:
    """Runs a worker began that ended over ``settle_s`` (and under a day) ago, unreported."""
    finished = [s for s in RunStatus if s.finished]
    query = (
        select(Run.id)
        .where(
            Run.status.in_(finished),
            Run.heartbeat_at.is_not(None),  # claimed once; a cancelled queued run has none
            Run.report_path.is_(None),
            Run.ended_at < db_now(-settle_s),
            Run.ended_at > db_now(-86400.0),
        )
        .order_by(Run.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def queued_runs(session: Session, limit: int = 200) -> Sequence[Run]:
    """Queued runs in claim order (oldest first)."""
    query = select(Run).where(Run.status == RunStatus.QUEUED).order_by(Run.id).limit(limit)
    return session.scalars(query).all()


def active_runs(session: Session) -> Sequence[Run]:
    """Runs a worker holds now (provisioning, running or analysing), oldest first."""
    query = select(Run).where(Run.status.in_(ACTIVE_STATUSES)).order_by(Run.id)
    return session.scalars(query).all()


def active_owners(session: Session) -> dict[int, str | None]:
    """Run id -> claiming worker, for every active run."""
    query = select(Run.id, Run.claimed_by).where(Run.status.in_(ACTIVE_STATUSES))
    return {row.id: row.claimed_by for row in session.execute(query)}


def waiting_on_baseline(session: Session, run: Run) -> int | None:
    """The baseline run a queued candidate waits for, if it is still pending."""
    if run.baseline_run_id is None:
        return None
    base = session.get(Run, run.baseline_run_id)
    return base.id if base is not None and base.status in PENDING else None
