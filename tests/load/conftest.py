"""Fixtures for the load tests: the real mock upstream on loopback, settings, scenarios."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from load_support import Upstream, scenario

from observatory.settings import (
    LatencyModel,
    ScenarioSettings,
    Settings,
    StreamModel,
    UpstreamSettings,
)
from observatory.upstream.server import UpstreamServer


@pytest.fixture(scope="module")
def upstream_server() -> Iterator[UpstreamServer]:
    settings = UpstreamSettings(
        seed=7,
        latency=LatencyModel(distribution="fixed", mean=0.01),
        stream=StreamModel(ttft=0.02, chunks=5, chunk_delay=0.01),
    )
    with UpstreamServer(settings) as server:
        yield server


@pytest.fixture
def upstream(upstream_server: UpstreamServer) -> Iterator[Upstream]:
    up = Upstream(upstream_server.url)
    up.reset()
    yield up
    up.reset()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def make_scenario() -> Callable[..., ScenarioSettings]:
    """make_scenario("chat.py", duration=4, processes=2, profile={...})"""
    return scenario
