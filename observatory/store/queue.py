"""The run queue: claiming queued runs and taking back runs whose worker stopped.

A claimed run carries its worker (``claimed_by``) and a lease (``lease_until``) that the
worker's heartbeat keeps extending. Claiming is safe with several workers and several hosts
on one database:

- Postgres: ``SELECT ... FOR UPDATE SKIP LOCKED`` picks the oldest claimable row nobody else
  is claiming, then an UPDATE in the same transaction takes it;
- SQLite: one conditional ``UPDATE ... WHERE id = (oldest claimable) AND status = 'queued'
  RETURNING id``; SQLite runs writers one at a time, so two claimers never see the same row
  as queued.

Order: oldest first by id. A validation queues its baseline run before its candidate (lower
id), and a candidate is not claimable while its baseline run is queued or active, so a
second host never starts a candidate before the baseline it will be compared with.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from observatory.domain import ACTIVE_STATUSES, RunStatus
from observatory.store.tables import Run, utcnow

PENDING = (RunStatus.QUEUED, *ACTIVE_STATUSES)


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
    query = select(run.id).where(run.status == RunStatus.QUEUED, ~waiting)
    if host_fingerprint is not None:
        # Baselines are compared only on like hosts: a run executes on the host that planned it.
        query = query.where(
            or_(run.host_fingerprint == host_fingerprint, run.host_fingerprint.is_(None))
        )
    return query.order_by(run.id).limit(1)


def _claim_values(worker: str, lease_s: float, now: datetime) -> dict[str, Any]:
    return {
        "status": RunStatus.PROVISIONING,
        "claimed_by": worker,
        "heartbeat_at": now,
        "lease_until": now + timedelta(seconds=lease_s),
    }


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
        .where(Run.id == partner, Run.status == RunStatus.QUEUED)
        .values(**_claim_values(worker, lease_s, now or utcnow()))
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
    values = _claim_values(worker, lease_s, now or utcnow())
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
        )
        .values(**values)
        .returning(Run.id)
    )
    run_id: int | None = session.scalar(statement, execution_options={"synchronize_session": False})
    return run_id


def _expired(now: datetime, dead_owners: Collection[str]) -> Any:
    lapsed = or_(Run.lease_until.is_(None), Run.lease_until < now)
    if dead_owners:
        lapsed = or_(lapsed, Run.claimed_by.in_(list(dead_owners)))
    return and_(Run.status.in_(ACTIVE_STATUSES), lapsed)


def expire_leases(
    session: Session,
    now: datetime | None = None,
    *,
    recoverer: str = "recovery",
    lease_s: float = 60.0,
    dead_owners: Collection[str] = (),
) -> list[ExpiredRun]:
    """Take back the active runs whose lease expired (or whose owner is known dead).

    Each is handed to ``recoverer`` with a fresh lease in the caller's transaction, so when
    several hosts recover at once exactly one gets each run; should the recoverer die before
    it concluded a run, that lease expires in turn and another recovery takes it.
    """
    now = now or utcnow()
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
        .values(claimed_by=recoverer, lease_until=now + timedelta(seconds=lease_s))
        .returning(Run.id),
        execution_options={"synchronize_session": False},
    ).all()
    return [found[run_id] for run_id in sorted(taken)]


def renew_lease(
    session: Session, run_id: int, worker: str, lease_s: float, now: datetime | None = None
) -> bool:
    """Extend ``worker``'s lease on an active run; False when it no longer holds the run.

    Fenced on ``claimed_by``: once recovery took a run back, its old worker cannot extend
    (and so cannot keep) it any more.
    """
    lease_until = (now or utcnow()) + timedelta(seconds=lease_s)
    renewed = session.scalar(
        update(Run)
        .where(Run.id == run_id, Run.claimed_by == worker, Run.status.in_(ACTIVE_STATUSES))
        .values(lease_until=lease_until)
        .returning(Run.id),
        execution_options={"synchronize_session": False},
    )
    return renewed is not None


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
