"""GET /healthz: database reachable, scheduler and worker alive."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from observatory.errors import ObservatoryError
from observatory.service.auth import state_of
from observatory.service.schemas import Health
from observatory.service.state import ServiceState
from observatory.store.db import transaction

router = APIRouter(tags=["health"])
COMPONENTS = ("worker", "scheduler", "delivery", "maintenance")


def health(state: ServiceState) -> Health:
    components = {
        name: ("alive" if state.components[name]() else "dead")
        if name in state.components
        else "disabled"
        for name in COMPONENTS
    }
    database = "ok" if _database_ok(state) else "unreachable"
    healthy = database == "ok" and "dead" not in components.values()
    return Health(
        status="ok" if healthy else "degraded",
        database=database,
        components=components,
    )


def _database_ok(state: ServiceState) -> bool:
    try:
        with transaction(state.sessions) as session:
            session.execute(text("SELECT 1"))
    except ObservatoryError:
        return False
    return True


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "Something is down."}},
)
def healthz(request: Request) -> JSONResponse:
    """Open to all (load balancers): reveals only what is up, never configuration."""
    result = health(state_of(request))
    return JSONResponse(result.model_dump(), status_code=200 if result.status == "ok" else 503)
