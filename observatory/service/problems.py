"""API errors: one JSON shape, ``{"error": {"message": ..., "fields": [...]}}``.

Bad input names the field and what is accepted; values a caller sent are never echoed
back (they may hold a token pasted into the wrong field), nor are secrets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from observatory.errors import InputError, NotFoundError, ObservatoryError

log = logging.getLogger(__name__)
UNPARSABLE_BODY = "There was an error parsing the body"


class ApiError(Exception):
    """An error answer: HTTP status, message, the fields at fault, extra JSON members."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: Sequence[str] = (),
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = [{"field": f, "message": message.removeprefix(f"{f}: ")} for f in fields]
        self.extra = extra or {}
        self.headers = headers


def error_body(message: str, fields: Sequence[dict[str, str]] = (), **extra: Any) -> dict[str, Any]:
    return {"error": {"message": message, "fields": list(fields), **extra}}


def _field_name(error: dict[str, Any]) -> str:
    if error["type"] == "json_invalid":
        return "body"  # its location holds a byte offset, not a field
    parts = [str(p) for p in error["loc"]]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:] or parts
    return ".".join(parts)


def _field_message(error: dict[str, Any], accepted: Sequence[str]) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown field; accepted: {', '.join(accepted)}" if accepted else "unknown field"
    if error["type"] == "missing":
        return "required"
    if error["type"] == "json_invalid":
        offset = error["loc"][-1] if error["loc"] else "?"
        detail = error.get("ctx", {}).get("error", "")
        return f"invalid JSON at position {offset}" + (f" ({detail})" if detail else "")
    return str(error["msg"]).removeprefix("Value error, ")


def validation_fields(exc: RequestValidationError, accepted: Sequence[str]) -> list[dict[str, str]]:
    return [{"field": _field_name(e), "message": _field_message(e, accepted)} for e in exc.errors()]


def install(app: FastAPI, accepted_body_fields: Sequence[str]) -> None:
    """Register the handlers that render every error in the one JSON shape."""

    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        body = error_body(exc.message, exc.fields, **exc.extra)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = validation_fields(exc, accepted_body_fields)
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
        malformed = any(e["type"] == "json_invalid" for e in exc.errors())
        body = error_body(f"invalid request: {summary}", fields)
        return JSONResponse(body, status_code=400 if malformed else 422)

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        headers = getattr(exc, "headers", None)
        if exc.detail == UNPARSABLE_BODY:  # FastAPI's words for a body that is not UTF-8
            fields = [{"field": "body", "message": "not JSON text in UTF-8"}]
            return JSONResponse(error_body("body: not JSON text in UTF-8", fields), 400)
        return JSONResponse(error_body(str(exc.detail)), exc.status_code, headers=headers)

    async def on_observatory(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ObservatoryError)
        if isinstance(exc, NotFoundError):
            return JSONResponse(error_body(str(exc)), status_code=404)
        if isinstance(exc, InputError):
            return JSONResponse(error_body(str(exc)), status_code=400)
        log.error("request failed: %s", exc)
        return JSONResponse(error_body(f"internal error: {exc}"), status_code=500)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ObservatoryError, on_observatory)
