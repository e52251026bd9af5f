"""Real mock-upstream subprocesses on loopback port 0, stopped after use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from observatory.settings import FaultKnobs, UpstreamSettings
from observatory.upstream import admin
from observatory.upstream.server import UpstreamServer

StartUpstream = Callable[..., UpstreamServer]

# No deliberate delays: shape and counting tests run at full speed.
FAST = {
    "seed": 1,
    "latency": {"distribution": "fixed", "mean": 0},
    "stream": {"ttft": 0, "chunks": 5, "chunk_delay": 0},
}


@pytest.fixture
def start_upstream() -> Iterator[StartUpstream]:
    """Start mock upstreams with the given settings; all are stopped at teardown."""
    servers: list[UpstreamServer] = []

    def start(**settings: Any) -> UpstreamServer:
        server = UpstreamServer(UpstreamSettings.model_validate(settings))
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def fast_server() -> Iterator[UpstreamServer]:
    with UpstreamServer(UpstreamSettings.model_validate(FAST)) as server:
        yield server


@pytest.fixture
def fast(fast_server: UpstreamServer) -> Iterator[httpx.Client]:
    """A client of the shared fast server, with faults cleared and stats zeroed."""
    admin.replace_faults(fast_server.url, FaultKnobs())
    admin.reset_stats(fast_server.url)
    with httpx.Client(base_url=fast_server.url, timeout=10) as client:
        yield client
