"""Request body limits, enforced before the body is read: size (413) and, on the JSON API,
the media type (415). A declared Content-Length over the limit is refused at once; a body
streamed without one is cut off as soon as it passes the limit."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observatory.service.problems import error_body

MAX_BODY_BYTES = 64 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_PREFIX = "/api/"


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` and non-JSON bodies on the API."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope, Headers(scope=scope))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, self._counting(receive), send)

    def _refusal(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        length = headers.get("content-length")
        if length is not None and not length.strip().isdigit():
            return _problem(400, "Content-Length", "not a number of bytes")
        if length is not None and int(length) > self.max_bytes:
            return self.too_large()
        has_body = (length is not None and int(length) > 0) or "transfer-encoding" in headers
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if has_body and scope["path"].startswith(JSON_PREFIX) and media != "application/json":
            return _problem(415, "Content-Type", "accepted: application/json")
        return None

    def too_large(self) -> JSONResponse:
        return _problem(413, "body", f"larger than the limit of {self.max_bytes} bytes")

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                # An HTTPException passes through FastAPI's body parsing to the JSON handler.
                raise HTTPException(413, f"body: larger than the limit of {self.max_bytes} bytes")
            return message

        return counted


def _problem(status: int, field: str, message: str) -> JSONResponse:
    text = f"{field}: {message}"
    return JSONResponse(error_body(text, [{"field": field, "message": message}]), status)
