"""Read models of the API and the live index: runs and validations with their builds."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from observatory.domain import ACTIVE_STATUSES, RunStatus
from observatory.errors import NotFoundError
from observatory.store.tables import Build, Run, Validation

RunWithBuild = tuple[Run, Build]


def find_runs(
    session: Session,
    *,
    status: str | None = None,
    scenario: str | None = None,
    build: str | None = None,
    verdict: str | None = None,
    limit: int = 50,
) -> list[RunWithBuild]:
    """Newest first."""
    query = select(Run, Build).join(Build, Run.build_id == Build.id)
    if status is not None:
        query = query.where(Run.status == status)
    if scenario is not None:
        query = query.where(Run.scenario == scenario)
    if build is not None:
        query = query.where(Build.name == build)
    if verdict is not None:
        query = query.where(Run.verdict == verdict)
    rows = session.execute(query.order_by(Run.id.desc()).limit(limit)).all()
    return [(run, b) for run, b in rows]


def run_with_build(session: Session, run_id: int) -> RunWithBuild:
    row = session.execute(
        select(Run, Build).join(Build, Run.build_id == Build.id).where(Run.id == run_id)
    ).first()
    if row is None:
        raise NotFoundError(f"unknown run {run_id}")
    return row[0], row[1]


def runs_in(session: Session, statuses: Sequence[str], limit: int = 200) -> list[RunWithBuild]:
    """Runs in the given statuses, oldest first (claim order for queued ones)."""
    query = (
        select(Run, Build)
        .join(Build, Run.build_id == Build.id)
        .where(Run.status.in_(list(statuses)))
        .order_by(Run.id)
        .limit(limit)
    )
    return [(run, b) for run, b in session.execute(query).all()]


def recent_finished(session: Session, limit: int = 50) -> list[RunWithBuild]:
    finished = [s.value for s in RunStatus if s.finished]
    query = (
        select(Run, Build)
        .join(Build, Run.build_id == Build.id)
        .where(Run.status.in_(finished))
        .order_by(Run.ended_at.desc(), Run.id.desc())
        .limit(limit)
    )
    return [(run, b) for run, b in session.execute(query).all()]


def active(session: Session) -> list[RunWithBuild]:
    return runs_in(session, [s.value for s in ACTIVE_STATUSES])


def list_validations(session: Session, limit: int = 50) -> list[tuple[Validation, Build]]:
    query = (
        select(Validation, Build)
        .join(Build, Validation.build_id == Build.id)
        .order_by(Validation.id.desc())
        .limit(limit)
    )
    return [(v, b) for v, b in session.execute(query).all()]


def get_validation(session: Session, validation_id: int) -> tuple[Validation, Build]:
    row = session.execute(
        select(Validation, Build)
        .join(Build, Validation.build_id == Build.id)
        .where(Validation.id == validation_id)
    ).first()
    if row is None:
        raise NotFoundError(f"unknown validation {validation_id}")
    return row[0], row[1]


def validation_runs(session: Session, validation_ids: Sequence[int]) -> list[RunWithBuild]:
    """Runs of the given validations, in execution order."""
    if not validation_ids:
        return []
    query = (
        select(Run, Build)
        .join(Build, Run.build_id == Build.id)
        .where(Run.validation_id.in_(list(validation_ids)))
        .order_by(Run.id)
    )
    return [(run, b) for run, b in session.execute(query).all()]
