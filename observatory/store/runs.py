"""Repository functions for runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, aliased

from observatory.domain import ACTIVE_STATUSES, MAX_ID, RunStatus
from observatory.errors import NotFoundError
from observatory.store.clock import db_now
from observatory.store.tables import Run


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
    """Queued runs end at once; running ones are stopped by their worker within a tick.

    Both are conditional updates: a cancel racing a claim either ends the run before the
    claim (which then finds nothing) or becomes a request to the worker that claimed it.
    """
    run = get_run(session, run_id)  # 404 for an unknown run
    queued = (Run.id == run_id, Run.status == RunStatus.QUEUED)
    active = (Run.id == run_id, Run.status.in_(ACTIVE_STATUSES))
    if _update(session, queued, status=RunStatus.ABORTED, ended_at=db_now(),
               end_reason="cancelled before it started", lease_until=None):  # fmt: skip
        message = f"run {run_id} cancelled (it had not started)"
    elif _update(session, active, cancel_requested=True):
        message = f"run {run_id}: cancel requested; its worker stops it within seconds"
    else:
        message = f"run {run_id} already ended ({{status}})"
    session.refresh(run)
    return message.format(status=run.status)


def _update(session: Session, condition: tuple[Any, ...], **values: Any) -> bool:
    changed = session.scalar(
        update(Run).where(*condition).values(**values).returning(Run.id),
        execution_options={"synchronize_session": False},
    )
    return changed is not None


def heartbeat(
    session: Session, run_id: int, owner: str, lease_s: float, progress: dict[str, object]
) -> bool | None:
    """Extend the run's lease and store its progress, fenced on the owner.

    Returns whether a cancel was requested, or None when ``owner`` no longer holds the run
    (recovery took it back after the lease expired): the caller must stop without concluding.
    """
    held = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.claimed_by == owner, Run.status.in_(ACTIVE_STATUSES))
        .values(heartbeat_at=db_now(), lease_until=db_now(lease_s), progress=progress)
        .returning(Run.cancel_requested)
    ).first()
    return None if held is None else bool(held[0])


def side_by_side_pairs(session: Session, scenario: str) -> list[tuple[Run, Run]]:
    """(baseline, candidate) of each completed side-by-side pair of ``scenario``, oldest first."""
    base = aliased(Run)
    query = (
        select(base, Run)
        .join(base, Run.baseline_run_id == base.id)
        .where(Run.scenario == scenario, Run.baseline_request == "alongside")
        .where(Run.status == "done", base.status == "done")
        .order_by(Run.id)
    )
    return [(b, c) for b, c in session.execute(query).all()]
