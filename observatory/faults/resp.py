"""Just enough of the Redis protocol (RESP2) to ping the run's private Redis and time commands.

The observatory itself needs one thing from Redis: to know that the server it started (or
the fault proxy in front of it) answers. A dozen lines of RESP keep the Redis client library
out of the observatory's dependencies. Socket errors (refused, reset, timeout) propagate
as ``OSError`` so callers can tell them apart; an error reply raises ``LoadError``.
"""

from __future__ import annotations

import socket
from types import TracebackType

from observatory.errors import LoadError

Reply = bytes | int | list["Reply"] | None


class RespConnection:
    """One connection: ``with RespConnection(host, port) as redis: redis.call("PING")``."""

    def __init__(self, host: str, port: int, timeout: float = 5.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._file = self._sock.makefile("rb")

    def call(self, *args: str | bytes | int) -> Reply:
        """Send one command and return its reply (simple strings come back as bytes)."""
        self._sock.sendall(encode(*args))
        return self._read()

    def close(self) -> None:
        self._file.close()
        self._sock.close()

    def __enter__(self) -> RespConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _read(self) -> Reply:
        line = self._file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionResetError("Redis closed the connection mid-reply")
        kind, body = line[:1], line[1:-2]
        if kind == b"+":
            return body
        if kind == b"-":
            raise LoadError(f"Redis answered an error: {body.decode(errors='replace')}")
        if kind == b":":
            return int(body)
        if kind == b"$":
            return self._bulk(int(body))
        if kind == b"*":
            count = int(body)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise LoadError(f"not a Redis reply: {line[:40]!r}")

    def _bulk(self, size: int) -> bytes | None:
        if size < 0:
            return None
        data = self._file.read(size + 2)
        if len(data) != size + 2:
            raise ConnectionResetError("Redis closed the connection mid-reply")
        return data[:-2]


def encode(*args: str | bytes | int) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def ping(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when a Redis at host:port answers PING with PONG."""
    try:
        with RespConnection(host, port, timeout) as redis:
            return redis.call("PING") == b"PONG"
    except (OSError, LoadError):
        return False
