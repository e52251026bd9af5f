"""A small OpenAI-compatible gateway for the fault tests, with Redis on its hot path.

    python fault_gateway.py --host H --port P [--config FILE] [--health-cost-ms MS]

- POST /v1/chat/completions answers a canned completion after one Redis GET when
  REDIS_HOST/REDIS_PORT are set (a cache lookup: 1 s timeout, fails open like LiteLLM);
- GET /health/liveliness and /health/readiness answer at once;
- GET /health blocks the event loop for --health-cost-ms (an expensive management call
  that starves everything else, as a synchronous handler in a real gateway would);
- any other GET answers {"data": []};
- GET /_hits returns every request's path and arrival time, the Redis outcomes and the
  REDIS_* variables the gateway was started with.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

REDIS_TIMEOUT_S = 1.0


def completion(tokens: int = 8) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fault-gateway",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 8, "completion_tokens": tokens, "total_tokens": 8 + tokens},
    }


async def redis_get(host: str, port: int, key: str) -> str:
    """One GET on a fresh connection; 'hit', 'miss' or why it failed."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), REDIS_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__
    try:
        writer.write(f"*2\r\n$3\r\nGET\r\n${len(key)}\r\n{key}\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), REDIS_TIMEOUT_S)
        return "miss" if line.startswith(b"$-1") else ("hit" if line else "closed")
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__
    finally:
        writer.transport.abort()


def build_app(health_cost_ms: float) -> Starlette:
    hits: list[tuple[str, float]] = []
    redis_outcomes: dict[str, int] = {}
    redis = (os.environ.get("REDIS_HOST"), os.environ.get("REDIS_PORT"))

    async def chat(request: Request) -> Response:
        hits.append((request.url.path, time.time()))
        await request.body()
        if redis[0] and redis[1]:
            outcome = await redis_get(redis[0], int(redis[1]), "cache:probe")
            redis_outcomes[outcome] = redis_outcomes.get(outcome, 0) + 1
        return JSONResponse(completion())

    async def get(request: Request) -> Response:
        path = request.url.path
        if path == "/_hits":
            env = {k: v for k, v in os.environ.items() if k.startswith("REDIS_")}
            return JSONResponse({"hits": hits, "redis": redis_outcomes, "env": env})
        hits.append((path, time.time()))
        if path in ("/health/liveliness", "/health/readiness"):
            return PlainTextResponse("I'm alive!")
        if path == "/health":
            time.sleep(health_cost_ms / 1000.0)  # blocks the loop on purpose
        return JSONResponse({"data": []})

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/{path:path}", get, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", default="")
    parser.add_argument("--health-cost-ms", type=float, default=20.0)
    args = parser.parse_args()
    app = build_app(args.health_cost_ms)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
