"""CPU time per request of the mock upstream, JSON and SSE, next to a bare floor.

Usage: .venv/bin/python benchmarks/upstream_cost.py [--requests 2000] [--streams 500]
       [--chunks 20] [--chunk-delay 0.001] [--concurrency 16] [--rounds 3]

The mock runs in its own process (``UpstreamServer``); this process drives the
requests with httpx and reads the server's CPU time (user + system, psutil) before
and after each batch. The reference, measured side by side in the same run, is a
"floor" server: the same uvicorn configuration (uvloop, httptools, no access log)
with a trivial raw ASGI app that answers a constant body and streams constant
chunks on the same schedule. The ratio mock / floor is what the mock's own logic
(parsing, planning, rendering, counting) costs on top of the HTTP server itself.

The gateway comparison (the mock must spend at most 1/5 of a LiteLLM proxy's CPU
per request) is a separate benchmark that puts a real proxy in front of the mock.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import psutil
from starlette.types import ASGIApp, Receive, Scope, Send

from observatory.settings import UpstreamSettings
from observatory.upstream.server import UpstreamServer

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 20}]}


@dataclass(frozen=True)
class Shape:
    requests: int
    streams: int
    chunks: int
    chunk_delay: float
    latency: float
    concurrency: int


# --- the floor server (runs in a child process: this file with --floor) -------------


def floor_app(shape: Shape) -> ASGIApp:
    body = b'{"ok":true}'
    chunk = b'data: {"choices":[{"delta":{"content":"lore"}}]}\n\n'

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        stream = False
        while True:
            message = await receive()
            stream = stream or b'"stream":true' in message.get("body", b"")
            if not message.get("more_body"):
                break
        if not stream:
            await asyncio.sleep(shape.latency)
            headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for _ in range(shape.chunks):
            await asyncio.sleep(shape.chunk_delay)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    return app


def serve_floor(shape: Shape) -> None:
    import uvicorn

    class Announcing(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            port = self.servers[0].sockets[0].getsockname()[1]
            print(f"floor listening on http://127.0.0.1:{port}", flush=True)

    config = uvicorn.Config(
        floor_app(shape),
        host="127.0.0.1",
        port=0,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )
    Announcing(config).run()


class FloorServer:
    def __init__(self, shape: Shape) -> None:
        argv = [sys.executable, __file__, "--floor", *shape_args(shape)]
        self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if match is None:
            self.stop()
            raise RuntimeError(f"floor server did not start: {line!r}")
        self.url = match.group(1)
        self.pid = self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


# --- the driver ----------------------------------------------------------------------


async def drive(url: str, count: int, stream: bool, concurrency: int) -> int:
    """Send ``count`` requests, ``concurrency`` at a time; return how many succeeded."""
    body = {**CHAT, "stream": True} if stream else CHAT
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    queue = iter(range(count))
    ok = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        for _ in queue:
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                async for _chunk in response.aiter_bytes():
                    pass
                ok += response.status_code == 200

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return ok


def cpu_ms_per_request(pid: int, url: str, count: int, stream: bool, concurrency: int) -> float:
    process = psutil.Process(pid)
    before = process.cpu_times()
    ok = asyncio.run(drive(url, count, stream, concurrency))
    after = process.cpu_times()
    if ok != count:
        raise RuntimeError(f"{count - ok} of {count} requests failed against {url}")
    spent = (after.user - before.user) + (after.system - before.system)
    return spent * 1000 / count


def shape_args(shape: Shape) -> list[str]:
    return [
        f"--requests={shape.requests}",
        f"--streams={shape.streams}",
        f"--chunks={shape.chunks}",
        f"--chunk-delay={shape.chunk_delay}",
        f"--latency={shape.latency}",
        f"--concurrency={shape.concurrency}",
    ]


def parse(argv: Sequence[str] | None) -> tuple[Shape, int, bool]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="JSON requests per batch")
    parser.add_argument("--streams", type=int, default=500, help="SSE requests per batch")
    parser.add_argument("--chunks", type=int, default=20)
    parser.add_argument("--chunk-delay", type=float, default=0.001, help="seconds")
    parser.add_argument("--latency", type=float, default=0.001, help="JSON delay, seconds")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="median over rounds")
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    shape = Shape(
        args.requests, args.streams, args.chunks, args.chunk_delay, args.latency, args.concurrency
    )
    return shape, args.rounds, args.floor


def main(argv: Sequence[str] | None = None) -> int:
    shape, rounds, floor = parse(argv)
    if floor:
        serve_floor(shape)
        return 0
    settings = UpstreamSettings.model_validate(
        {
            "seed": 1,
            "latency": {"distribution": "fixed", "mean": shape.latency},
            "stream": {"ttft": shape.chunk_delay, "chunks": shape.chunks,
                       "chunk_delay": shape.chunk_delay},
        }
    )  # fmt: skip
    results: dict[str, list[float]] = {k: [] for k in ("mock json", "floor json",
                                                       "mock sse", "floor sse")}  # fmt: skip
    floor_server = FloorServer(shape)
    try:
        with UpstreamServer(settings) as mock:
            # Warm both servers (imports, connection pools, caches) before measuring.
            for pid, url in ((mock.pid, mock.url), (floor_server.pid, floor_server.url)):
                cpu_ms_per_request(pid, url, 200, False, shape.concurrency)
            for _ in range(rounds):
                for name, pid, url in (("mock", mock.pid, mock.url),
                                       ("floor", floor_server.pid, floor_server.url)):  # fmt: skip
                    results[f"{name} json"].append(
                        cpu_ms_per_request(pid, url, shape.requests, False, shape.concurrency)
                    )
                    results[f"{name} sse"].append(
                        cpu_ms_per_request(pid, url, shape.streams, True, shape.concurrency)
                    )
    finally:
        floor_server.stop()
    report(shape, results)
    return 0


def report(shape: Shape, results: dict[str, list[float]]) -> None:
    medians = {name: statistics.median(values) for name, values in results.items()}
    print(
        f"CPU ms per request (median of {len(results['mock json'])} rounds; "
        f"{shape.requests} JSON / {shape.streams} SSE requests of {shape.chunks} chunks "
        f"per round, {shape.concurrency} concurrent)"
    )
    for kind in ("json", "sse"):
        mock, floor = medians[f"mock {kind}"], medians[f"floor {kind}"]
        ratio = mock / floor
        print(f"  {kind:4}  mock {mock:6.3f}  floor {floor:6.3f}  ratio mock/floor {ratio:5.2f}")


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    sys.exit(code)
