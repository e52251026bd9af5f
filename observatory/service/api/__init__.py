"""The JSON API under /api/v1; one module per resource."""

from __future__ import annotations

from fastapi import APIRouter

from observatory.service.api import builds, health, runs, validations

PREFIX = "/api/v1"


def api_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX)
    for module in (validations, runs, builds, health):
        router.include_router(module.router)
    return router
