"""LiteLLM: the generated proxy config, and a real proxy release against the mock upstream."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest
import yaml
from builds_helpers import MASTER_KEY, assert_all_gone

from observatory.builds import litellm
from observatory.builds.provision import start_gateway
from observatory.settings import GatewaySettings, Settings, UpstreamSettings
from observatory.upstream.server import UpstreamServer

STABLE = "litellm[proxy]==1.81.9"
UP = "http://127.0.0.1:5555"


def test_proxy_config_routes_every_model_to_the_mock_upstream() -> None:
    gateway = GatewaySettings(master_key=MASTER_KEY)
    config = litellm.proxy_config(gateway, UP + "/")
    models = {m["model_name"]: m for m in config["model_list"]}
    assert set(models) == {"gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "text-embedding-3-small"}
    assert models["gpt-4o"]["litellm_params"] == {
        "model": "openai/gpt-4o",
        "api_base": UP + "/v1",
        "api_key": f"{litellm.UPSTREAM_API_KEY}-gpt-4o",  # a key per deployment
    }
    assert models["claude-3-5-haiku"]["litellm_params"]["model"] == "anthropic/claude-3-5-haiku"
    assert models["claude-3-5-haiku"]["litellm_params"]["api_base"] == UP
    assert models["text-embedding-3-small"]["model_info"] == {"mode": "embedding"}
    assert config["general_settings"] == {"master_key": "os.environ/LITELLM_MASTER_KEY"}
    assert MASTER_KEY not in json.dumps(config)
    assert litellm.env(gateway)["LITELLM_MASTER_KEY"] == MASTER_KEY
    assert litellm.env(gateway)["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_proxy_config_is_deep_merged() -> None:
    gateway = GatewaySettings(
        models=["m"],
        proxy_config={
            "litellm_settings": {"cache": True, "cache_params": {"type": "redis", "port": 1}},
            "general_settings": {"max_parallel_requests": 10},
            "router_settings": {"num_retries": 0},
        },
    )
    config = litellm.proxy_config(gateway, UP)
    assert config["litellm_settings"] == {
        "telemetry": False,
        "cache": True,
        "cache_params": {"type": "redis", "port": 1},
    }
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    assert config["general_settings"]["max_parallel_requests"] == 10
    assert config["router_settings"] == {"num_retries": 0}
    assert gateway.proxy_config["litellm_settings"] == {
        "cache": True,
        "cache_params": {"type": "redis", "port": 1},
    }, "the settings object is not modified"


def test_config_file_is_private_and_valid_yaml(tmp_path: Path) -> None:
    path = litellm.write_config(litellm.proxy_config(GatewaySettings(), UP), tmp_path / "c.yaml")
    assert path.stat().st_mode & 0o777 == 0o600
    assert yaml.safe_load(path.read_text())["model_list"][0]["model_name"] == "gpt-4o-mini"


def test_argv_adds_workers_only_when_asked(tmp_path: Path) -> None:
    one = litellm.argv(tmp_path, tmp_path / "c.yaml", 4000, 1)
    assert one[:3] == [str(tmp_path / "bin" / "litellm"), "--config", str(tmp_path / "c.yaml")]
    assert one[one.index("--host") + 1] == "127.0.0.1"
    assert "--num_workers" not in one
    two = litellm.argv(tmp_path, tmp_path / "c.yaml", 4000, 2)
    assert two[-2:] == ["--num_workers", "2"]


@pytest.mark.slow
def test_real_litellm_release_serves_chat_and_stream_through_the_mock(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "gateways": {"litellm": {"master_key": MASTER_KEY, "readiness_timeout": "180s"}},
            "builds": {"stable": {"gateway": "litellm", "pip": STABLE}},
        }
    )
    upstream = UpstreamSettings(
        seed=7,
        latency={"distribution": "fixed", "mean": "5ms"},
        stream={"ttft": "5ms", "chunks": 6, "chunk_delay": "2ms"},
    )
    run_dir = tmp_path / "run"
    with UpstreamServer(upstream) as up:
        gateway = start_gateway(
            settings.builds["stable"], settings.gateways["litellm"], settings, up.url, run_dir
        )
        try:
            assert gateway.pid is not None
            tree = [gateway.pid, *(p.pid for p in psutil.Process(gateway.pid).children(True))]
            _check_served(gateway.base_url, gateway.api_key)
            fingerprint = gateway.fingerprint()
            sample = gateway.resource_probe().sample(datetime.now(UTC))
        finally:
            gateway.stop()
    assert_all_gone(tree)
    assert gateway.version == "1.81.9"
    assert fingerprint["version"] == "1.81.9"
    assert fingerprint["package"] == "litellm"
    assert fingerprint["python"].startswith("3.")
    assert MASTER_KEY not in json.dumps(fingerprint)
    assert sample.rss_mb is not None
    assert sample.rss_mb > 50
    assert MASTER_KEY not in (run_dir / "gateway.log").read_text()
    assert MASTER_KEY not in (run_dir / "gateway-config.yaml").read_text()


def _check_served(base: str, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        refused = client.post("/v1/chat/completions", json=body, headers={"Authorization": "x"})
        assert refused.status_code in (401, 403)

        reply = client.post("/v1/chat/completions", json=body)
        assert reply.status_code == 200, reply.text
        assert reply.json()["choices"][0]["message"]["content"]
        assert reply.headers["x-litellm-version"] == "1.81.9"
        assert "llm_provider-x-upstream-service-time-ms" in reply.headers

        with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
            assert r.status_code == 200
            events = [line for line in r.iter_lines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        chunks = [json.loads(e[6:]) for e in events[:-1]]
        text = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert (
            len([c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")])
            == 6
        )
        assert text

        messages = client.post(
            "/v1/messages",
            json={"model": "claude-3-5-haiku", "max_tokens": 20,
                  "messages": [{"role": "user", "content": "hi"}]},
        )  # fmt: skip
        assert messages.status_code == 200, messages.text
        assert messages.json()["type"] == "message"
