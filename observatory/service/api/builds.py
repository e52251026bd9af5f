"""GET /builds, POST /builds/{name}/promote."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from observatory.service.auth import require_read, require_write, state_of
from observatory.service.schemas import BuildView
from observatory.service.views import build_view
from observatory.store import builds
from observatory.store.db import transaction

router = APIRouter(tags=["builds"])


@router.get("/builds", response_model=list[BuildView], dependencies=[Depends(require_read)])
def list_builds(request: Request) -> list[BuildView]:
    """Every known build: configured ones and exact versions submitted for validation."""
    with transaction(state_of(request).sessions) as session:
        return [build_view(b) for b in builds.list_builds(session)]


@router.post(
    "/builds/{name:path}/promote",
    response_model=BuildView,
    dependencies=[Depends(require_write)],
    responses={404: {"description": "Unknown build."}},
)
def promote_build(name: str, request: Request) -> BuildView:
    """Mark a build stable: it becomes the baseline of later candidates of its gateway."""
    with transaction(state_of(request).sessions) as session:
        return build_view(builds.promote(session, name))
