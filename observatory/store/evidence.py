"""A stored run as the analysis's input (RunData)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from observatory.analysis.rundata import (
    ERROR_COLUMNS,
    OPTIONAL_RESOURCE_COLUMNS,
    RESOURCE_COLUMNS,
    WINDOW_COLUMNS,
    RunData,
)
from observatory.domain import FaultPhase
from observatory.store import samples
from observatory.store.tables import FaultPhaseRow, Run

RESOURCE_TABLE = {**RESOURCE_COLUMNS, **OPTIONAL_RESOURCE_COLUMNS}


def load_run_data(session: Session, run: Run) -> RunData:
    """Frames with ``t`` in seconds since the run started (or was created, if it never did)."""
    origin = run.started_at or run.created_at
    windows = samples.windows_frame(session, run.id, origin)
    errors = samples.errors_frame(session, run.id, origin)
    resources = samples.resources_frame(session, run.id, origin)
    return RunData(
        windows=windows[list(WINDOW_COLUMNS)].astype(WINDOW_COLUMNS),
        errors=errors[list(ERROR_COLUMNS)].astype(ERROR_COLUMNS),
        resources=resources[list(RESOURCE_TABLE)].astype(RESOURCE_TABLE),
        phases=load_phases(session, run.id),
        duration_s=run.duration_s,
        warmup_s=run.warmup_s,
        window_s=run.window_s,
        open_model=run.profile.get("model") == "open",
        crash=run.environment.get("crash"),
        end_reason=run.end_reason,
        started_at=run.started_at.timestamp() if run.started_at is not None else None,
    )


def load_phases(session: Session, run_id: int) -> tuple[FaultPhase, ...]:
    rows = session.scalars(
        select(FaultPhaseRow).where(FaultPhaseRow.run_id == run_id).order_by(FaultPhaseRow.id)
    )
    return tuple(FaultPhase(r.fault, r.start_offset_s, r.duration_s, dict(r.params)) for r in rows)
