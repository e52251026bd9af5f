"""CPU time per request: the mock upstream vs a real LiteLLM proxy in front of it.

Usage: .venv/bin/python benchmarks/upstream_vs_gateway_cpu.py
       [--build 'litellm[proxy]==1.81.9'] [--requests 300] [--streams 100] [--chunks 20]
       [--concurrency 8] [--rounds 3] [--cache-dir ~/.cache/observatory]

Both servers run as their own processes on loopback: the mock (``UpstreamServer``) and the
proxy (``start_gateway``, a cached pip venv). This process drives batches of requests with
httpx through the proxy and reads the CPU time (user + system, psutil, summed over each
process tree) of both servers before and after each batch, so both numbers come from the
very same requests. A batch sent to the mock directly gives the mock's cost on its own.
The target: the mock spends at most 1/5 of the gateway's CPU per request (ratio <= 0.20),
non-streaming and streaming, so the mock can never be what limits a load test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from observatory.builds.provision import RunningGateway, start_gateway
from observatory.settings import Settings, UpstreamSettings
from observatory.upstream.server import UpstreamServer

TARGET = 0.20
PROMPT = {"role": "user", "content": "hello " * 20}


@dataclass(frozen=True)
class Batch:
    """One batch's CPU milliseconds per request, per server."""

    mock_alone: float
    mock_behind: float
    gateway: float


def tree_cpu_seconds(pid: int) -> float:
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def drive(base: str, key: str | None, count: int, stream: bool, concurrency: int) -> int:
    """Send ``count`` chat requests, ``concurrency`` at a time; return how many succeeded."""
    body = {"model": "gpt-4o-mini", "messages": [PROMPT], "stream": stream}
    headers = {"Authorization": f"Bearer {key or 'sk-bench'}"}
    queue = iter(range(count))
    ok = 0

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal ok
        for _ in queue:
            async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                async for _line in response.aiter_lines():
                    pass
                ok += response.status_code == 200

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=limits
    ) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return ok


def measure(pids: Sequence[int], base: str, key: str | None, count: int, stream: bool,
            concurrency: int) -> list[float]:  # fmt: skip
    """CPU ms per request of each pid's tree over one batch."""
    before = [tree_cpu_seconds(pid) for pid in pids]
    ok = asyncio.run(drive(base, key, count, stream, concurrency))
    after = [tree_cpu_seconds(pid) for pid in pids]
    if ok != count:
        raise SystemExit(f"only {ok} of {count} requests succeeded against {base}")
    return [(a - b) * 1000 / count for a, b in zip(after, before, strict=True)]


def one_round(up: UpstreamServer, gw: RunningGateway, args: argparse.Namespace,
              stream: bool) -> Batch:  # fmt: skip
    count = args.streams if stream else args.requests
    assert gw.pid is not None
    (alone,) = measure([up.pid], up.url, None, count, stream, args.concurrency)
    behind, gateway = measure(
        [up.pid, gw.pid], gw.base_url, gw.api_key, count, stream, args.concurrency
    )
    return Batch(alone, behind, gateway)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--build", default="litellm[proxy]==1.81.9", help="pip spec")
    parser.add_argument("--requests", type=int, default=300, help="JSON requests per batch")
    parser.add_argument("--streams", type=int, default=100, help="SSE requests per batch")
    parser.add_argument("--chunks", type=int, default=20, help="chunks per stream")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="median over rounds")
    parser.add_argument("--cache-dir", type=Path, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    config: dict[str, object] = {
        "builds": {"bench": {"gateway": "litellm", "pip": args.build}},
        "gateways": {"litellm": {"readiness_timeout": "300s"}},
    }
    if args.cache_dir is not None:
        config["cache_dir"] = str(args.cache_dir)
    settings = Settings.model_validate(config)
    upstream = UpstreamSettings(
        seed=1,
        latency={"distribution": "fixed", "mean": "5ms"},
        stream={"ttft": "5ms", "chunks": args.chunks, "chunk_delay": "1ms"},
    )
    results: dict[str, list[Batch]] = {"json": [], "stream": []}
    with tempfile.TemporaryDirectory() as run_dir, UpstreamServer(upstream) as up:
        build = settings.builds["bench"]
        with start_gateway(build, settings.gateways["litellm"], settings, up.url,
                           Path(run_dir)) as gw:  # fmt: skip
            print(f"gateway: LiteLLM {gw.version} (pid {gw.pid}); mock pid {up.pid}")
            for stream in (False, True):  # warm-up: lazy imports, connection pools
                measure([up.pid], gw.base_url, gw.api_key, 20, stream, args.concurrency)
            for _ in range(args.rounds):
                for mode, stream in (("json", False), ("stream", True)):
                    results[mode].append(one_round(up, gw, args, stream))
    return report(args, results)


def report(args: argparse.Namespace, results: dict[str, list[Batch]]) -> int:
    print(
        f"\nCPU ms per request, median of {args.rounds} rounds "
        f"({args.requests} JSON / {args.streams} streamed requests of {args.chunks} chunks "
        f"per batch, concurrency {args.concurrency})\n"
    )
    print(f"{'mode':8} {'mock alone':>11} {'mock behind':>12} {'gateway':>9} "
          f"{'mock/gateway':>13}  target <= {TARGET:.2f}")  # fmt: skip
    failed = False
    for mode, batches in results.items():
        alone = statistics.median(b.mock_alone for b in batches)
        behind = statistics.median(b.mock_behind for b in batches)
        gateway = statistics.median(b.gateway for b in batches)
        ratio = behind / gateway
        verdict = "ok" if ratio <= TARGET else "MISSED"
        failed = failed or ratio > TARGET
        print(f"{mode:8} {alone:11.3f} {behind:12.3f} {gateway:9.3f} {ratio:13.3f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
