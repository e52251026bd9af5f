"""Thin ASGI plumbing: read a body, send a response, pace a stream, reset a connection."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import struct
import time

from starlette.types import Receive, Send

from observatory.errors import InputError

Headers = list[tuple[bytes, bytes]]
JSON = b"application/json"
SSE = b"text/event-stream"
MAX_BODY = 8 * 1024 * 1024  # a request body larger than this is refused with 413


class BodyTooLargeError(InputError):
    """The request body exceeds MAX_BODY (answered with 413)."""


async def read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLargeError(f"body: larger than {MAX_BODY} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def send_bytes(send: Send, status: int, body: bytes, headers: Headers) -> None:
    """One complete response with a content-length."""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def start_stream(send: Send, headers: Headers) -> None:
    headers.append((b"cache-control", b"no-cache"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})


async def send_part(send: Send, body: bytes, *, last: bool = False) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": not last})


async def sleep_until(deadline: float) -> None:
    """Sleep until ``time.monotonic()`` reaches ``deadline``, never less.

    uvloop timers count whole milliseconds (rounded) against a cached clock, so a
    timer may fire a little early and a sub-millisecond sleep fires at once: the
    deadline is re-checked against the monotonic clock, and each sleep is rounded up
    to whole milliseconds so that the re-check never turns into a busy loop.
    """
    while (remaining := deadline - time.monotonic()) > 0:
        await asyncio.sleep(math.ceil(remaining * 1000) / 1000)


def service_header(seconds: float) -> tuple[bytes, bytes]:
    return (b"x-upstream-service-time-ms", f"{seconds * 1000:.3f}".encode())


def ttft_header(seconds: float) -> tuple[bytes, bytes]:
    return (b"x-upstream-ttft-ms", f"{seconds * 1000:.3f}".encode())


async def reset_connection(send: Send, receive: Receive) -> bool:
    """Abort the TCP connection with a RST and no response; False if the server's
    transport is unreachable (then the caller answers instead).

    ASGI has no "abort" message, so this reaches the transport through uvicorn's
    request cycle, which is the bound owner of ``send`` (httptools and h11 protocols).
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports are not asyncio.Transport subclasses.
    if transport is None or not callable(getattr(transport, "abort", None)):
        return False
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    # Wait for the server to notice, so it does not try to answer on a dead transport.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(receive(), timeout=1.0)
    return True
