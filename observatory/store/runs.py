"""Repository functions for runs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from observatory.domain import MAX_ID, RunStatus
from observatory.errors import NotFoundError
from observatory.store.tables import Run, utcnow


def get_run(session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id) if 1 <= run_id <= MAX_ID else None
    if run is None:
        raise NotFoundError(f"unknown run {run_id}")
    return run


def list_runs(
    session: Session,
    *,
    limit: int = 50,
    status: str | None = None,
    scenario: str | None = None,
    build_id: int | None = None,
) -> Sequence[Run]:
    query = select(Run).order_by(Run.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Run.status == status)
    if scenario is not None:
        query = query.where(Run.scenario == scenario)
    if build_id is not None:
        query = query.where(Run.build_id == build_id)
    return session.scalars(query).all()


def request_cancel(session: Session, run_id: int) -> str:
    """Queued runs end at once; running ones are stopped by their worker within a tick."""
    run = get_run(session, run_id)
    status = RunStatus(run.status)
    if status.finished:
        return f"run {run_id} already ended ({run.status})"
    if status == RunStatus.QUEUED:
        run.status = RunStatus.ABORTED
        run.end_reason = "cancelled before it started"
        run.ended_at = utcnow()
        return f"run {run_id} cancelled (it had not started)"
    run.cancel_requested = True
    return f"run {run_id}: cancel requested; its worker stops it within seconds"


def heartbeat(
    session: Session, run_id: int, owner: str, lease_s: float, progress: dict[str, object]
) -> bool | None:
    """Extend the run's lease and store its progress, fenced on the owner.

    Returns whether a cancel was requested, or None when ``owner`` no longer holds the run
    (recovery took it back after the lease expired): the caller must stop without concluding.
    """
    now = utcnow()
    active = (RunStatus.PROVISIONING, RunStatus.RUNNING, RunStatus.ANALYSING)
    held = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.claimed_by == owner, Run.status.in_(active))
        .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease_s), progress=progress)
        .returning(Run.cancel_requested)
    ).first()
    return None if held is None else bool(held[0])
