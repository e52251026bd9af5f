"""The mock upstream as a raw ASGI app: routing, pacing, fault injection, admin API.

A raw ASGI callable rather than a framework: the mock must cost a small fraction of
the gateway it feeds (see benchmarks/upstream_cost.py), so the hot path is a dict
lookup, one ``json.loads`` and pre-serialised bodies.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.types import Receive, Scope, Send

from observatory.errors import InputError
from observatory.settings import UpstreamSettings
from observatory.upstream import anthropic, openai, responses
from observatory.upstream.admin_api import AdminApi
from observatory.upstream.asgi import (
    JSON,
    SSE,
    BodyTooLargeError,
    Headers,
    read_body,
    reset_connection,
    send_bytes,
    send_part,
    service_header,
    sleep_until,
    start_stream,
    ttft_header,
)
from observatory.upstream.completion import Body, Completion, StreamBody
from observatory.upstream.plan import Outcome, Planner, RequestPlan
from observatory.upstream.stats import Stats

Parser = Callable[[Body, int, int], Completion]
Renderer = Callable[[Completion], bytes]
Streamer = Callable[[Completion, int], StreamBody]
ErrorBody = Callable[[int, str], bytes]


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one generation endpoint parses, answers and fails."""

    endpoint: str
    parse: Parser
    render: Renderer
    stream: Streamer
    error: ErrorBody


DIALECTS = {
    "/chat/completions": Dialect(
        "chat_completions",
        openai.parse_chat,
        openai.chat_json,
        openai.chat_stream,
        openai.error_json,
    ),
    "/responses": Dialect(
        "responses",
        responses.parse_responses,
        responses.responses_json,
        responses.responses_stream,
        openai.error_json,
    ),
    "/messages": Dialect(
        "messages",
        anthropic.parse_messages,
        anthropic.messages_json,
        anthropic.messages_stream,
        anthropic.error_json,
    ),
}


class UpstreamApp:
    """ASGI callable; one instance serves one event loop."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.planner = Planner(settings)
        self.stats = Stats()
        self.admin = AdminApi(self.planner, self.stats)
        self._numbers = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"].rstrip("/")
        if path.startswith("/admin/"):
            await self.admin.handle(scope["method"], path, receive, send)
            return
        path = path.removeprefix("/v1")
        self.stats.in_flight += 1
        try:
            await self._route(scope["method"], path, receive, send)
        finally:
            self.stats.in_flight -= 1

    async def _route(self, method: str, path: str, receive: Receive, send: Send) -> None:
        started = time.monotonic()
        dialect = DIALECTS.get(path)
        if dialect is not None and method == "POST":
            await self._generate(dialect, started, receive, send)
        elif path == "/embeddings" and method == "POST":
            await self._simple("embeddings", started, receive, send, openai.embeddings_json)
        elif path == "/models" and method == "GET":
            await self._simple("models", started, receive, send, _models, has_body=False)
        else:
            self.stats.requests["not_found"] += 1
            body = openai.error_json(404, f"no route for {method} {path or '/'}")
            await send_bytes(send, 404, body, [(b"content-type", JSON), service_header(0.0)])

    async def _simple(
        self,
        endpoint: str,
        started: float,
        receive: Receive,
        send: Send,
        render: Callable[[Body], bytes],
        *,
        has_body: bool = True,
    ) -> None:
        """A JSON answer after the base delay (or an injected fault)."""
        self.stats.requests[endpoint] += 1
        try:
            answer = render(_object(await _json_body(receive)) if has_body else {})
        except InputError as exc:
            await _bad_request(send, openai.error_json, exc, started)
            return
        plan = self.planner.plan(stream=False)
        if await self._fault(plan, started, openai.error_json, receive, send):
            return
        await sleep_until(started + plan.before_headers + plan.first)
        headers = [(b"content-type", JSON), service_header(time.monotonic() - started)]
        await send_bytes(send, 200, answer, headers)

    async def _generate(
        self, dialect: Dialect, started: float, receive: Receive, send: Send
    ) -> None:
        self.stats.requests[dialect.endpoint] += 1
        try:
            body = _object(await _json_body(receive))
            completion = dialect.parse(body, next(self._numbers), self.settings.stream.chunks)
        except InputError as exc:
            await _bad_request(send, dialect.error, exc, started)
            return
        plan = self.planner.plan(stream=completion.stream)
        if await self._fault(plan, started, dialect.error, receive, send):
            return
        if completion.stream:
            await self._stream(
                dialect.stream(completion, self.settings.stream.chunks), plan, started, send
            )
            return
        await sleep_until(started + plan.before_headers + plan.first)
        headers = [(b"content-type", JSON), service_header(time.monotonic() - started)]
        await send_bytes(send, 200, dialect.render(completion), headers)

    async def _stream(
        self, body: StreamBody, plan: RequestPlan, started: float, send: Send
    ) -> None:
        """Headers (with the planned totals) after stall and added latency, the head
        events at once, content chunks on an absolute schedule (no drift), then the tail."""
        await sleep_until(started + plan.before_headers)
        headers = [
            (b"content-type", SSE),
            service_header(plan.stream_total(len(body.chunks))),
            ttft_header(plan.before_headers + plan.first),
        ]
        await start_stream(send, headers)
        if body.head:
            await send_part(send, body.head)
        first = started + plan.before_headers + plan.first
        for index, chunk in enumerate(body.chunks):
            await sleep_until(first + index * plan.chunk_delay)
            await send_part(send, chunk)
        await send_part(send, body.tail, last=True)

    async def _fault(
        self,
        plan: RequestPlan,
        started: float,
        error: ErrorBody,
        receive: Receive,
        send: Send,
    ) -> bool:
        """Apply a stall (then carry on), a reset or an error; True if it answered."""
        if plan.stall:
            self.stats.faults["stall"] += 1
        if plan.outcome is Outcome.OK:
            return False
        await sleep_until(started + plan.before_headers)
        if plan.outcome is Outcome.RESET:
            if await reset_connection(send, receive):
                self.stats.faults["reset"] += 1
                return True
            # No transport to abort (another ASGI server): fail loudly instead.
            plan = RequestPlan(Outcome.ERROR, 500, plan.stall, plan.added, 0.0, 0.0)
        self.stats.faults[f"error_{plan.status}"] += 1
        headers = [(b"content-type", JSON), service_header(time.monotonic() - started)]
        if plan.status == 429:
            headers.append((b"retry-after", b"1"))
        body = error(plan.status, f"mock upstream injected a {plan.status} error")
        await send_bytes(send, plan.status, body, headers)
        return True


def _models(_: Body) -> bytes:
    return openai.MODELS_JSON


async def _json_body(receive: Receive) -> object:
    raw = await read_body(receive)
    try:
        return json.loads(raw)
    except ValueError:
        raise InputError("body: expected a JSON object, got invalid JSON") from None


def _object(body: object) -> Body:
    if not isinstance(body, dict):
        raise InputError(f"body: expected a JSON object, got {type(body).__name__}")
    return body


async def _bad_request(send: Send, error: ErrorBody, exc: InputError, started: float) -> None:
    status = 413 if isinstance(exc, BodyTooLargeError) else 400
    headers: Headers = [(b"content-type", JSON), service_header(time.monotonic() - started)]
    await send_bytes(send, status, error(status, str(exc)), headers)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(settings: UpstreamSettings) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI app of the mock upstream configured by ``settings``."""
    return UpstreamApp(settings)
