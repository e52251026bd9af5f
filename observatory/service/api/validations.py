"""POST /validations (202 at once, 409 for a duplicate), GET /validations[/{id}]."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from observatory.domain import TriggerSource
from observatory.errors import InputError
from observatory.service import queries
from observatory.service.auth import require_read, require_write, state_of
from observatory.service.problems import ApiError
from observatory.service.schemas import (
    RowId,
    RunRef,
    ValidationBody,
    ValidationCreated,
    ValidationView,
)
from observatory.service.state import ServiceState
from observatory.service.views import base_url, validation_view
from observatory.settings import Settings
from observatory.store.db import transaction
from observatory.store.tables import Build, Run
from observatory.validation import (
    Plan,
    ValidationRequest,
    find_active_duplicate,
    plan,
    resolve_build,
)

router = APIRouter(tags=["validations"])

ERROR_RESPONSES: dict[int | str, dict[str, str]] = {
    400: {"description": "Bad input: the message names the field and what is accepted."},
    401: {"description": "Missing or wrong bearer token."},
    403: {"description": "No API token configured: writes are disabled."},
    409: {"description": "Same build, scenarios and tag already queued or running."},
    422: {"description": "Malformed body (unknown field, wrong type)."},
}


@router.post(
    "/validations",
    status_code=202,
    response_model=ValidationCreated,
    dependencies=[Depends(require_write)],
    responses=ERROR_RESPONSES,
)
def create_validation(body: ValidationBody, request: Request) -> ValidationCreated:
    """Queue a validation: its runs (a baseline first when needed); never waits for them."""
    state = state_of(request)
    build_name = _resolve_build(state.settings, body.build)
    _check_scenarios(state.settings, body.scenarios)
    wanted = ValidationRequest(
        build=body.build,
        scenarios=tuple(body.scenarios),
        source=TriggerSource(body.source),
        duration_s=body.duration,
        tag=body.tag,
        requester=body.requester,
        baseline=body.baseline,
    )
    planned = _plan(state, wanted, build_name)
    state.on_enqueue()
    return _created(state, planned)


def _resolve_build(settings: Settings, text: str) -> str:
    try:
        name, _ = resolve_build(settings, text)
    except InputError as exc:
        raise ApiError(400, f"build: {hidden(str(exc), text)}", ["build"]) from None
    return name


def _check_scenarios(settings: Settings, scenarios: list[str]) -> None:
    for scenario in scenarios:
        try:
            settings.scenario(scenario)
        except InputError as exc:
            raise ApiError(400, f"scenarios: {exc}", ["scenarios"]) from None


def _plan(state: ServiceState, wanted: ValidationRequest, build_name: str) -> Plan:
    with state.plan_lock, transaction(state.sessions) as session:
        duplicate = find_active_duplicate(session, build_name, wanted.scenarios, wanted.tag)
        if duplicate is not None:
            raise ApiError(
                409,
                f"validation {duplicate.id} of build {build_name!r} with the same scenarios "
                "and tag is still queued or running",
                extra={"validation_id": duplicate.id},
            )
        try:
            return plan(session, state.settings, wanted, state.host_fingerprint)
        except InputError as exc:
            raise _planning_error(hidden(str(exc), wanted.baseline)) from None


def _planning_error(message: str) -> ApiError:
    """Name the body field of a planning error (build and scenarios were checked before)."""
    for field in ("duration", "baseline", "scenarios", "build", "tag", "requester"):
        if message.startswith(f"{field}:"):
            return ApiError(400, message, [field])
    if message.startswith("unknown run"):
        return ApiError(400, f"baseline: {message}", ["baseline"])
    return ApiError(400, message)


def hidden(message: str, value: str) -> str:
    """``message`` without the value the caller sent, nor any quoted part of it (it may be a
    token pasted by mistake)."""

    def hide(match: re.Match[str]) -> str:
        quoted = match.group(1)
        return "(value not shown)" if quoted and quoted.lower() in value.lower() else match[0]

    return re.sub(r"'([^']*)'", hide, message.replace(repr(value), "(value not shown)"))


def _created(state: ServiceState, planned: Plan) -> ValidationCreated:
    with transaction(state.sessions) as session:
        runs = queries.validation_runs(session, [planned.validation_id])
    base = base_url(state.settings)
    refs = [
        RunRef(id=r.id, scenario=r.scenario, role=r.role, report_url=f"{base}/runs/{r.id}/report")
        for r, _ in runs
    ]
    by_id = {ref.id: ref for ref in refs}
    return ValidationCreated(
        validation_id=planned.validation_id,
        run_ids=list(planned.run_ids),
        candidate_run_ids=list(planned.candidate_run_ids),
        report_urls=[by_id[i].report_url for i in planned.candidate_run_ids if i in by_id],
        runs=refs,
        notes=list(planned.notes),
        status_url=f"{base}/api/v1/validations/{planned.validation_id}",
    )


@router.get(
    "/validations", response_model=list[ValidationView], dependencies=[Depends(require_read)]
)
def list_validations(
    request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[ValidationView]:
    """Newest first, each with its overall status and verdict (runs left out)."""
    state = state_of(request)
    with transaction(state.sessions) as session:
        rows = queries.list_validations(session, limit)
        runs = queries.validation_runs(session, [v.id for v, _ in rows])
    by_validation: dict[int | None, list[tuple[Run, Build]]] = {}
    for run, build in runs:
        by_validation.setdefault(run.validation_id, []).append((run, build))
    return [
        validation_view(v, b, by_validation.get(v.id, []), state.settings, with_runs=False)
        for v, b in rows
    ]


@router.get(
    "/validations/{validation_id}",
    response_model=ValidationView,
    dependencies=[Depends(require_read)],
    responses={404: {"description": "Unknown validation."}},
)
def get_validation(validation_id: RowId, request: Request) -> ValidationView:
    """One validation with its runs; ``exit_code`` follows the project convention."""
    state = state_of(request)
    with transaction(state.sessions) as session:
        validation, build = queries.get_validation(session, validation_id)
        runs = queries.validation_runs(session, [validation_id])
    return validation_view(validation, build, runs, state.settings, with_runs=True)
