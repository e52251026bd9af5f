"""A TCP fault proxy between a gateway and a dependency it reaches over TCP (the run's Redis).

The gateway is configured with the proxy's address; the orchestrator switches the proxy's
mode between two ticks of a run. Modes:

- ``pass``: bytes flow unchanged.
- ``slow``: every chunk read in either direction is held ``delay`` seconds before it is
  written on. This is latency, not a bandwidth cap: chunks read 10 ms apart leave 10 ms
  apart, in order. A request/response command (a Redis GET) therefore takes at least
  2 x ``delay``, and the dependency still answers every one of them.
- ``refuse``: the listening socket is closed, so a new connection gets ECONNREFUSED exactly
  as from a dead server, and every open connection is reset.
- ``blackhole``: connections are accepted (the kernel completes the handshake) but nothing
  is forwarded either way: commands go unanswered until the client's own timeout fires.
  When the fault ends, connections that lost bytes are reset: their protocol stream is
  out of step (a reply would answer the wrong command), as after a real partition.

The asyncio loop runs in a thread of its own so the synchronous orchestrator can use it; a
switch returns once the loop has applied it. ``counters()`` is what the fault point saw:
connections accepted and reset, chunks held and for how long, bytes swallowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, TypeVar

from observatory.errors import ForbiddenTargetError, InputError, LoadError
from observatory.settings import is_allowed_target

log = logging.getLogger(__name__)

CHUNK = 65536
QUEUE_CHUNKS = 256  # per direction: bounds memory while chunks are held
CONNECT_TIMEOUT_S = 5.0
SWITCH_TIMEOUT_S = 10.0
REBIND_ATTEMPTS = 20  # the port is ours again unless something grabbed it meanwhile
_T = TypeVar("_T")


class Mode(StrEnum):
    PASS = "pass"  # noqa: S105 - a mode name, not a password
    SLOW = "slow"
    REFUSE = "refuse"
    BLACKHOLE = "blackhole"


@dataclass
class Counters:
    """Cumulative counts since the proxy started (``delta`` gives those of a phase)."""

    accepted: int = 0  # client connections accepted
    reset: int = 0  # open connections reset by the proxy (refuse, or healing a black hole)
    blackholed: int = 0  # connections that lost bytes to the black hole
    upstream_failures: int = 0  # connections the target refused or did not answer in time
    delayed_chunks: int = 0
    delayed_bytes: int = 0
    held_s_total: float = 0.0  # time chunks really spent held (slow mode)
    held_s_max: float = 0.0  # since the last switch
    discarded_bytes: int = 0
    forwarded_bytes: int = 0

    def snapshot(self) -> dict[str, float]:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}


def delta(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float]:
    """The counters' changes between two snapshots (``held_s_max``: the later one's)."""
    return {
        key: after[key] if key == "held_s_max" else round(after[key] - before[key], 6)
        for key in Counters.__dataclass_fields__
    }


@dataclass(frozen=True, slots=True)
class _Held:
    """A chunk on its way: when it was read and when it may leave."""

    read_at: float
    due: float
    chunk: bytes


@dataclass(eq=False)
class _Link:
    """One client connection and, unless it was black-holed at accept, its upstream one."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tainted: bool = False  # lost bytes to a black hole: its stream is out of step
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            if writer is not None:
                writer.transport.abort()


class FaultProxy:
    """``with FaultProxy(("127.0.0.1", 6380)) as proxy: proxy.slow(2.0) ... proxy.heal()``."""

    def __init__(self, target: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0):
        if not is_allowed_target(target[0], []) or not is_allowed_target(host, []):
            raise ForbiddenTargetError(
                f"fault proxy {host} -> {target[0]}:{target[1]}: both ends must be loopback "
                "(faults are only ever applied to dependencies the observatory started)"
            )
        self.target = target
        self.host = host
        self.port = port
        self.counters = Counters()
        self._mode = Mode.PASS
        self._delay = 0.0
        self._links: set[_Link] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def delay(self) -> float:
        return self._delay

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    # lifecycle (called from the orchestrator's thread)

    def start(self) -> FaultProxy:
        self._thread.name = f"fault-proxy-{self.target[1]}"
        self._thread.start()
        try:
            self._call(self._listen())
        except BaseException:
            self.stop()  # no loop thread outlives a proxy that never listened
            raise
        log.info("fault proxy %s:%s -> %s:%s", self.host, self.port, *self.target)
        return self

    def stop(self) -> None:
        """Close the listener and every connection; stop the loop. Safe to call twice."""
        if not self._thread.is_alive():
            return
        with contextlib.suppress(LoadError):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(SWITCH_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # switches

    def slow(self, delay: float) -> None:
        """Hold every chunk ``delay`` seconds in each direction (from now on)."""
        if not delay > 0:
            raise InputError(f"slow: delay must be a positive number of seconds, got {delay!r}")
        self._call(self._switch(Mode.SLOW, delay))

    def refuse(self) -> None:
        """Stop listening (ECONNREFUSED) and reset every open connection."""
        self._call(self._switch(Mode.REFUSE, 0.0))

    def blackhole(self) -> None:
        """Accept connections but forward nothing either way."""
        self._call(self._switch(Mode.BLACKHOLE, 0.0))

    def heal(self) -> None:
        """Back to pass-through: listen again, reset connections that lost bytes."""
        self._call(self._switch(Mode.PASS, 0.0))

    def snapshot(self) -> dict[str, Any]:
        """Mode, delay, open connections and the counters, read on the proxy's loop."""
        return self._call(self._snapshot())

    # on the loop

    def _call(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if not self._thread.is_alive():
            coro.close()
            raise LoadError(f"fault proxy for {self.target[0]}:{self.target[1]} is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(SWITCH_TIMEOUT_S)
        except TimeoutError:
            future.cancel()
            raise LoadError("fault proxy did not apply a switch within 10 s") from None
        except OSError as exc:
            raise LoadError(f"fault proxy on {self.host}:{self.port}: {exc}") from exc

    async def _snapshot(self) -> dict[str, Any]:
        return {
            "mode": str(self._mode),
            "delay_s": self._delay,
            "open_connections": len(self._links),
            **self.counters.snapshot(),
        }

    async def _listen(self) -> None:
        for attempt in range(REBIND_ATTEMPTS):
            try:
                self._server = await asyncio.start_server(
                    self._on_client, self.host, self.port, reuse_address=True
                )
                break
            except OSError:
                if self.port == 0 or attempt == REBIND_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.25)
        assert self._server is not None
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _unlisten(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()

    async def _switch(self, mode: Mode, delay: float) -> None:
        previous, self._mode, self._delay = self._mode, mode, delay
        self.counters.held_s_max = 0.0
        if mode is Mode.REFUSE:
            await self._unlisten()
            self._reset(lambda link: True)
        elif mode is Mode.PASS:
            self._reset(lambda link: link.tainted)
        if self._server is None and mode is not Mode.REFUSE:
            await self._listen()
        log.info("fault proxy :%s %s -> %s", self.port, previous, mode)

    def _reset(self, which: Callable[[_Link], bool]) -> None:
        for link in [link for link in self._links if which(link)]:
            link.abort()
            self.counters.reset += 1

    async def _shutdown(self) -> None:
        await self._unlisten()
        for link in list(self._links):
            link.abort()
        handlers = list(self._handlers)
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.accepted += 1
        link = _Link(client=writer)
        self._links.add(link)
        handler = asyncio.current_task()
        if handler is not None:
            self._handlers.add(handler)
        try:
            if self._mode is Mode.BLACKHOLE:
                await self._swallow(reader, link)
                return
            upstream = await self._connect()
            if upstream is None:
                return
            link.server = upstream[1]
            await self._relay(link, reader, upstream[0])
        finally:
            self._links.discard(link)
            self._handlers.discard(handler)
            for task in link.tasks:
                task.cancel()
            link.abort()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(*self.target), timeout=CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            self.counters.upstream_failures += 1
            log.warning("fault proxy: target %s:%s unreachable: %s", *self.target, exc)
            return None

    async def _relay(
        self, link: _Link, client: asyncio.StreamReader, server: asyncio.StreamReader
    ) -> None:
        assert link.server is not None
        loop = asyncio.get_running_loop()
        link.tasks = [
            loop.create_task(self._pipe(client, link.server, link)),
            loop.create_task(self._pipe(server, link.client, link)),
        ]
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(*link.tasks)

    async def _swallow(self, reader: asyncio.StreamReader, link: _Link) -> None:
        """A connection accepted into the black hole: read and drop until it is reset."""
        link.tainted = True
        self.counters.blackholed += 1
        with contextlib.suppress(OSError):
            while chunk := await reader.read(CHUNK):
                self.counters.discarded_bytes += len(chunk)

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        """One direction: read chunks, stamp when each may leave, write them in order."""
        queue: asyncio.Queue[_Held | None] = asyncio.Queue(QUEUE_CHUNKS)
        sender = asyncio.get_running_loop().create_task(self._send(queue, writer))
        try:
            while chunk := await reader.read(CHUNK):
                await self._admit(queue, chunk, link)
            await queue.put(None)
            await sender
        finally:
            sender.cancel()

    async def _admit(self, queue: asyncio.Queue[_Held | None], chunk: bytes, link: _Link) -> None:
        if self._mode is Mode.BLACKHOLE:
            if not link.tainted:
                link.tainted = True
                self.counters.blackholed += 1
            self.counters.discarded_bytes += len(chunk)
            return
        now = asyncio.get_running_loop().time()
        if self._delay > 0:
            self.counters.delayed_chunks += 1
            self.counters.delayed_bytes += len(chunk)
        await queue.put(_Held(now, now + self._delay, chunk))

    async def _send(self, queue: asyncio.Queue[_Held | None], writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        while (item := await queue.get()) is not None:
            wait = item.due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if item.due > item.read_at:
                self._held(loop.time() - item.read_at)
            writer.write(item.chunk)
            self.counters.forwarded_bytes += len(item.chunk)
            await writer.drain()
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()

    def _held(self, seconds: float) -> None:
        self.counters.held_s_total += seconds
        self.counters.held_s_max = max(self.counters.held_s_max, seconds)
