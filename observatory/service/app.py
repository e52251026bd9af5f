"""The FastAPI app: the JSON API under /api/v1 (OpenAPI at /docs and /openapi.json), the
live index at /, and the run reports. Built by ``create_app``; nothing at import time."""

from __future__ import annotations

from fastapi import FastAPI

from observatory.service import login, pages, problems
from observatory.service.api import api_router
from observatory.service.api.health import healthz
from observatory.service.limits import BodyLimit
from observatory.service.schemas import ValidationBody
from observatory.service.sessions import LoginSessions
from observatory.service.state import ServiceState

DESCRIPTION = """Release validation for LLM gateways.

Writes need `Authorization: Bearer <token>` (`service.api_token`); reads too when
`service.read_auth` is on. Errors are `{"error": {"message": ..., "fields": [...]}}`.
A build is a configured build name or an exact version of a configured gateway's package;
nothing sent here can run a command or install anything else.
"""


def create_app(state: ServiceState) -> FastAPI:
    app = FastAPI(
        title="Observatory",
        version="1",
        description=DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    app.state.service = state
    problems.install(app, accepted_body_fields=sorted(ValidationBody.model_fields))
    app.add_middleware(BodyLimit)
    app.include_router(api_router())
    # Also at the root, where load balancers and probes look for it.
    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.state.logins = LoginSessions()
    app.include_router(login.router)
    app.include_router(pages.router)
    pages.mount_static(app)
    return app
