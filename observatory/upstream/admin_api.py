"""The admin endpoints (served under /admin, never counted as upstream requests).

GET /admin/faults, PUT /admin/faults (replace; omitted knobs take their defaults),
POST /admin/faults (merge into the current knobs), GET /admin/stats,
POST /admin/reset-stats, GET /admin/health. Bodies are validated with the same
pydantic model as the configuration; a bad one gets 422 naming each bad field.
"""

from __future__ import annotations

import json

from pydantic import ValidationError
from starlette.types import Receive, Send

from observatory.errors import InputError
from observatory.settings import FaultKnobs
from observatory.upstream.asgi import JSON, read_body, send_bytes
from observatory.upstream.plan import Planner
from observatory.upstream.stats import Stats


class AdminApi:
    def __init__(self, planner: Planner, stats: Stats) -> None:
        self.planner = planner
        self.stats = stats

    async def handle(self, method: str, path: str, receive: Receive, send: Send) -> None:
        if path == "/admin/faults" and method in ("PUT", "POST"):
            await self._set_faults(method == "POST", receive, send)
        elif path == "/admin/faults" and method == "GET":
            await _reply(send, 200, self.planner.faults.model_dump(mode="json"))
        elif path == "/admin/stats" and method == "GET":
            await _reply(send, 200, self.stats.snapshot())
        elif path == "/admin/reset-stats" and method == "POST":
            self.stats.reset()
            await _reply(send, 200, self.stats.snapshot())
        elif path == "/admin/health" and method == "GET":
            await _reply(send, 200, {"status": "ok"})
        else:
            await _reply(send, 404, _error(f"no admin route for {method} {path}", []))

    async def _set_faults(self, merge: bool, receive: Receive, send: Send) -> None:
        try:
            body = json.loads(await read_body(receive))
        except (ValueError, InputError):
            await _reply(send, 422, _error("body: expected a JSON object of fault knobs", []))
            return
        if not isinstance(body, dict):
            message = f"body: expected a JSON object of fault knobs, got {type(body).__name__}"
            await _reply(send, 422, _error(message, []))
            return
        current = self.planner.faults.model_dump() if merge else {}
        try:
            knobs = FaultKnobs.model_validate({**current, **body})
        except ValidationError as exc:
            fields = _fields(exc)
            message = "invalid fault knobs: " + "; ".join(f"{f}: {m}" for f, m in fields)
            await _reply(send, 422, _error(message, fields))
            return
        self.planner.faults = knobs
        await _reply(send, 200, knobs.model_dump(mode="json"))


def _fields(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) per problem; messages name what is accepted and what was sent."""
    out = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "body"
        message = "unknown knob; known: " + ", ".join(FaultKnobs.model_fields)
        if error["type"] != "extra_forbidden":
            message = f"{error['msg'].removeprefix('Value error, ')} (got {error['input']!r})"
        out.append((field, message))
    return out


def _error(message: str, fields: list[tuple[str, str]]) -> dict[str, object]:
    detail = [{"field": field, "message": text} for field, text in fields]
    return {"error": {"message": message, "type": "invalid_request_error", "fields": detail}}


async def _reply(send: Send, status: int, payload: object) -> None:
    await send_bytes(send, status, json.dumps(payload).encode(), [(b"content-type", JSON)])
