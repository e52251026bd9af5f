"""Every scenario, unchanged, against a real LiteLLM proxy in front of the mock upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from load_support import Upstream, scenario

from observatory.builds.provision import RunningGateway, start_gateway
from observatory.domain import Window
from observatory.load.runner import start_load
from observatory.load.spool import read_spool
from observatory.settings import Settings
from observatory.upstream.server import UpstreamServer

pytestmark = pytest.mark.slow

STABLE = "litellm[proxy]==1.81.9"
SCENARIOS = [
    "chat.py",
    "chat_stream.py",
    "embeddings.py",
    "responses.py",
    "anthropic_messages.py",
    "mixed.py",
]


@pytest.fixture(scope="module")
def litellm_settings() -> Settings:
    return Settings.model_validate(
        {
            "gateways": {"litellm": {"readiness_timeout": "180s"}},
            "builds": {"stable": {"gateway": "litellm", "pip": STABLE}},
        }
    )


@pytest.fixture(scope="module")
def gateway(
    upstream_server: UpstreamServer,
    litellm_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningGateway]:
    settings = litellm_settings
    running = start_gateway(
        settings.builds["stable"],
        settings.gateways["litellm"],
        settings,
        upstream_server.url,
        tmp_path_factory.mktemp("gateway"),
    )
    with running:
        yield running


@pytest.mark.parametrize("file", SCENARIOS)
def test_scenario_runs_unchanged_through_litellm(
    gateway: RunningGateway,
    upstream: Upstream,
    litellm_settings: Settings,
    tmp_path: Path,
    file: str,
) -> None:
    load = start_load(
        scenario(file, duration=3, profile={"model": "closed", "users": 2, "spawn_rate": 10}),
        file,
        gateway.base_url,
        gateway.api_key,
        tmp_path,
        litellm_settings,
        stop_timeout=10,
    )
    assert load.wait(60) == 0
    windows = [r for r in read_spool(load.spool_path) if isinstance(r, Window)]
    latency = [w for w in windows if w.series == "latency"]
    requests = sum(w.count for w in latency)
    assert requests > 5
    assert sum(w.failures for w in latency) == 0
    assert requests == upstream.stats()["requests_total"]  # nothing lost, nothing retried
    series = {w.series for w in windows}
    if file == "chat.py":  # LiteLLM's own header, and the mock's passed on with a prefix
        overhead = sum(w.count for w in windows if w.series == "overhead_header")
        assert overhead == requests
        assert sum(w.count for w in windows if w.series == "overhead") == requests
    if file == "chat_stream.py":
        assert {"ttft", "inter_chunk", "tokens"} <= series
    assert gateway.api_key not in (tmp_path / "locust.log").read_text()
