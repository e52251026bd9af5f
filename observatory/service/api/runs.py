"""GET /runs (filtered), GET /runs/{id} (live status), GET /queue, POST /runs/{id}/cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from observatory.domain import RunStatus, Verdict
from observatory.service import queries
from observatory.service.auth import require_read, require_write, state_of
from observatory.service.problems import ApiError
from observatory.service.schemas import CancelResult, QueuedRun, QueueView, RowId, RunView
from observatory.service.views import run_view
from observatory.store import queue
from observatory.store import runs as store_runs
from observatory.store.db import transaction

router = APIRouter(tags=["runs"])


def _one_of(field: str, value: str | None, accepted: list[str]) -> str | None:
    if value is not None and value not in accepted:
        raise ApiError(400, f"{field}: not accepted; accepted: {', '.join(accepted)}", [field])
    return value


@router.get("/runs", response_model=list[RunView], dependencies=[Depends(require_read)])
def list_runs(
    request: Request,
    status: str | None = None,
    scenario: str | None = None,
    build: str | None = None,
    verdict: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[RunView]:
    """Newest first; filters combine (status, scenario, build name, verdict)."""
    state = state_of(request)
    _one_of("status", status, [s.value for s in RunStatus])
    _one_of("verdict", verdict, [v.value for v in Verdict])
    with transaction(state.sessions) as session:
        rows = queries.find_runs(
            session, status=status, scenario=scenario, build=build, verdict=verdict, limit=limit
        )
    return [run_view(run, b, state.settings, state.host_fingerprint) for run, b in rows]


@router.get(
    "/runs/{run_id}",
    response_model=RunView,
    dependencies=[Depends(require_read)],
    responses={404: {"description": "Unknown run."}},
)
def get_run(run_id: RowId, request: Request) -> RunView:
    """Live status: status, verdict, progress (updated every second while running), report URL."""
    state = state_of(request)
    with transaction(state.sessions) as session:
        run, build = queries.run_with_build(session, run_id)
    return run_view(run, build, state.settings, state.host_fingerprint)


@router.get("/queue", response_model=QueueView, dependencies=[Depends(require_read)])
def get_queue(request: Request) -> QueueView:
    """Runs held by workers now, and queued runs in the order they will be claimed."""
    state = state_of(request)
    settings = state.settings
    with transaction(state.sessions) as session:
        active = queries.active(session)
        queued = queries.runs_in(session, [RunStatus.QUEUED.value])
        waits = {run.id: queue.waiting_on_baseline(session, run) for run, _ in queued}
    return QueueView(
        load_slots=settings.service.load_slots,
        active=[run_view(r, b, settings) for r, b in active],
        queued=[
            QueuedRun(
                position=i + 1,
                run=run_view(r, b, settings, state.host_fingerprint),
                waiting_for=waits[r.id],
            )
            for i, (r, b) in enumerate(queued)
        ],
    )


@router.post(
    "/runs/{run_id}/cancel",
    status_code=202,
    response_model=CancelResult,
    dependencies=[Depends(require_write)],
    responses={404: {"description": "Unknown run."}},
)
def cancel_run(run_id: RowId, request: Request) -> CancelResult:
    """A queued run ends at once; a running one is stopped by its worker within seconds."""
    state = state_of(request)
    with transaction(state.sessions) as session:
        message = store_runs.request_cancel(session, run_id)
        status = store_runs.get_run(session, run_id).status
    return CancelResult(run_id=run_id, status=status, message=message)
