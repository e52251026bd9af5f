"""Service fixtures: a config on tmp_path, and the real app on a loopback uvicorn server."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import Window
from observatory.load.histogram import Histogram
from observatory.service.app import create_app
from observatory.service.state import ServiceState
from observatory.settings import Settings, load_settings
from observatory.store import builds
from observatory.store.db import transaction

TOKEN = "test-token-5d1f0a"
HOST_FP = "host-test"

CONFIG = """
data_dir: {data}
scenarios_dir: {scenarios}
builds:
  stable: {{gateway: litellm, pip: "litellm[proxy]==1.81.9", channel: stable}}
  cand: {{gateway: litellm, pip: "litellm[proxy]==1.81.12"}}
  dev: {{gateway: litellm, command: "gw --port {{port}}", version: dev}}
scenarios:
  chat: {{file: chat.py, profile: {{users: 2}}, duration: 10m, warmup: 1m}}
  mixed: {{file: chat.py, profile: {{model: open, rate: 5}}, duration: 10m}}
service:
  public_base_url: http://observatory.test
  lease: 30s
{extra}
"""

MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(tmp_path: Path) -> MakeSettings:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir(exist_ok=True)
    (scenarios / "chat.py").write_text("# scenario\n")

    def make(extra: str = "", env: dict[str, str] | None = None) -> Settings:
        path = tmp_path / "observatory.yaml"
        text = CONFIG.format(data=tmp_path / "data", scenarios=scenarios, extra=extra)
        path.write_text(text)
        return load_settings(path, environ=env or {})

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(env={"OBSERVATORY_SERVICE__API_TOKEN": TOKEN})


@dataclass
class Server:
    url: str
    state: ServiceState

    def client(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


@dataclass
class Running:
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        assert not self.thread.is_alive()


def start_server(state: ServiceState) -> tuple[str, Running]:
    config = uvicorn.Config(
        create_app(state), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in 20s"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", Running(server, thread)


@pytest.fixture
def serve(sessions: sessionmaker[Session]) -> Iterator[Callable[[Settings], Server]]:
    """Start the app for given settings on a real loopback port; stopped at teardown."""
    running: list[Running] = []

    def start(settings: Settings) -> Server:
        with transaction(sessions) as session:
            builds.sync_configured(session, settings.builds)
        state = ServiceState(settings, sessions, HOST_FP)
        url, handle = start_server(state)
        running.append(handle)
        return Server(url, state)

    yield start
    for handle in running:
        handle.stop()


@pytest.fixture
def server(serve: Callable[[Settings], Server], settings: Settings) -> Server:
    return serve(settings)


def windows(start: datetime, count: int, length_s: float = 10.0, seed: int = 1) -> list[Window]:
    """``count`` consecutive latency windows with real HDR histograms of random values."""
    rng = random.Random(seed)
    out = []
    for index in range(count):
        histogram = Histogram()
        values = [rng.lognormvariate(4.0, 0.5) for _ in range(rng.randint(20, 60))]
        for value in values:
            histogram.record_ms(value)
        p = histogram.percentiles_ms()
        out.append(
            Window(
                series="latency",
                name="chat",
                start=start + timedelta(seconds=index * length_s),
                length_s=length_s,
                count=len(values) + 1,
                failures=1,
                histogram=histogram.encode(),
                p50=p[50.0],
                p90=p[90.0],
                p95=p[95.0],
                p99=p[99.0],
                p999=p[99.9],
                max=histogram.max_ms(),
            )
        )
    return out
