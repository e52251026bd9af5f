"""A user's own LiteLLM config: kept as configured, pointed at the mock, secrets kept out."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from builds_helpers import MASTER_KEY

from observatory.builds import litellm
from observatory.builds.provision import start_gateway
from observatory.errors import ConfigError
from observatory.settings import GatewaySettings, Settings, UpstreamSettings, load_settings
from observatory.upstream.admin import get_stats
from observatory.upstream.server import UpstreamServer

STABLE = "litellm[proxy]==1.81.9"
UP = "http://127.0.0.1:5555"
LITERAL_KEY = "sk-live-literal-do-not-leak"
ENV_SECRET = "sk-env-secret-do-not-leak"

COUNTER = """
import os

from litellm.integrations.custom_logger import CustomLogger


class Counter(CustomLogger):
    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        with open(os.environ["CALLBACK_COUNT_FILE"], "a") as handle:
            handle.write(kwargs.get("model", "?") + "\\n")


handler = Counter()
"""


def own_config(**extra: Any) -> dict[str, Any]:
    return {
        "model_list": [
            {"model_name": "gpt-4o-mini",
             "litellm_params": {"model": "openai/gpt-4o-mini", "api_key": LITERAL_KEY,
                                "api_base": "https://api.openai.com/v1", "rpm": 600}},
            {"model_name": "gpt-4o-mini",  # a second deployment of the same model group
             "litellm_params": {"model": "gpt-4o-mini", "api_key": "os.environ/PROD_KEY"}},
            {"model_name": "claude",
             "litellm_params": {"model": "anthropic/claude-3-5-haiku",
                                "api_key": "os.environ/PROD_KEY"}},
        ],
        "litellm_settings": {"callbacks": "counter.handler", "num_retries": 0},
        "router_settings": {"routing_strategy": "simple-shuffle", "allowed_fails": 3},
        "general_settings": {"master_key": "sk-prod-master", "max_parallel_requests": 50},
        "guardrails": [{"guardrail_name": "g", "litellm_params": {"guardrail": "custom"}}],
        **extra,
    }  # fmt: skip


def write_folder(folder: Path, config: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "counter.py").write_text(COUNTER)
    path = folder / "proxy.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def gateway(path: Path, **extra: Any) -> GatewaySettings:
    env = {"PROD_KEY": ENV_SECRET}
    return GatewaySettings(config_file=path, master_key=MASTER_KEY, env=env, **extra)


def test_everything_configured_is_kept_and_every_deployment_points_at_the_mock(
    tmp_path: Path,
) -> None:
    config = litellm.proxy_config(gateway(write_folder(tmp_path, own_config())), UP)
    original = own_config()
    for section in ("litellm_settings", "router_settings", "guardrails"):
        kept = config[section]
        assert kept == original[section] or kept == {**original[section], "telemetry": False}
    assert config["general_settings"]["max_parallel_requests"] == 50
    assert config["general_settings"]["master_key"] == "os.environ/LITELLM_MASTER_KEY"
    params = [entry["litellm_params"] for entry in config["model_list"]]
    assert [p["api_base"] for p in params] == [UP + "/v1", UP + "/v1", UP]
    assert [p["model"] for p in params] == [
        "openai/gpt-4o-mini", "openai/gpt-4o-mini", "anthropic/claude-3-5-haiku"
    ]  # fmt: skip
    assert len({p["api_key"] for p in params}) == 3  # distinct deployments stay distinct
    assert params[0]["rpm"] == 600
    text = json.dumps(config)
    assert LITERAL_KEY not in text
    assert ENV_SECRET not in text
    assert "sk-prod-master" not in text
    assert set(litellm.secrets(gateway(tmp_path / "proxy.yaml"))) >= {LITERAL_KEY, ENV_SECRET}


def test_a_fleet_is_added_to_the_users_deployments(tmp_path: Path) -> None:
    config = litellm.proxy_config(gateway(write_folder(tmp_path, own_config()), fleet=3), UP)
    names = [entry["model_name"] for entry in config["model_list"]]
    assert names[-3:] == ["fleet-001", "fleet-002", "fleet-003"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"model_list": [{"model_name": "b", "litellm_params": {"model": "bedrock/claude"}}]},
            "model_list[0] (b): provider 'bedrock' cannot be pointed at the mock upstream; "
            "accepted: openai/..., anthropic/...",
        ),
        (
            {"general_settings": {"database_url": "os.environ/DATABASE_URL"}},
            "general_settings.database_url needs a database the gateway may use",
        ),
        ({"model_list": []}, "model_list: expected a non-empty list of deployments"),
    ],
)
def test_a_config_that_cannot_be_rewritten_fails_the_config_check(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    write_folder(tmp_path / "prod", own_config(**change))
    (tmp_path / "observatory.yaml").write_text(
        "gateways:\n  prod: {kind: litellm, config_file: prod/proxy.yaml}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "observatory.yaml", environ={})
    assert "gateways.prod" in str(caught.value)
    assert f"config_file proxy.yaml: {message}" in str(caught.value)
    assert LITERAL_KEY not in str(caught.value)


def test_broken_yaml_is_named_without_quoting_the_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yaml"
    path.write_text(f"model_list:\n  - api_key: {LITERAL_KEY}\n    : [\n")
    with pytest.raises(ValueError, match="not valid YAML at line") as caught:
        GatewaySettings(config_file=path)
    assert LITERAL_KEY not in str(caught.value)


def test_only_litellm_configs_are_accepted(tmp_path: Path) -> None:
    path = write_folder(tmp_path, own_config())
    with pytest.raises(ValueError, match="only a LiteLLM config can be rewritten"):
        GatewaySettings(kind="openai", config_file=path)


@pytest.mark.slow
def test_real_litellm_runs_the_users_callback_from_the_config_folder(tmp_path: Path) -> None:
    config = own_config()
    del config["guardrails"]  # a real guardrail needs a provider of its own
    path = write_folder(tmp_path / "prod", config)
    counted = tmp_path / "calls.txt"
    env = {"PROD_KEY": ENV_SECRET, "CALLBACK_COUNT_FILE": str(counted)}
    settings = Settings.model_validate(
        {
            "gateways": {
                "prod": {"master_key": MASTER_KEY, "readiness_timeout": "180s",
                         "config_file": str(path), "env": env}
            },
            "builds": {"stable": {"gateway": "prod", "pip": STABLE}},
        }
    )  # fmt: skip
    upstream = UpstreamSettings(seed=3, latency={"distribution": "fixed", "mean": "5ms"})
    run_dir = tmp_path / "run"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]}
    with UpstreamServer(upstream) as up:
        running = start_gateway(
            settings.builds["stable"], settings.gateways["prod"], settings, up.url, run_dir
        )
        with running, httpx.Client(base_url=running.base_url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {MASTER_KEY}"}
            for _ in range(3):
                reply = client.post("/v1/chat/completions", json=body, headers=headers)
                assert reply.status_code == 200, reply.text
            deadline = time.monotonic() + 10  # success callbacks run after the response
            while time.monotonic() < deadline and len(_lines(counted)) < 3:
                time.sleep(0.2)
            assert get_stats(up.url)["requests"]["chat_completions"] >= 3  # the mock served them
    assert len(_lines(counted)) == 3  # the user's callback module ran, from its folder
    written = (run_dir / "gateway-config" / "proxy.yaml").read_text()
    log = (run_dir / "gateway.log").read_text()
    for secret in (LITERAL_KEY, ENV_SECRET, MASTER_KEY):
        assert secret not in written
        assert secret not in log


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
