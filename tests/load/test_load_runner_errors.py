"""Bad input to the runner fails clearly, before any load process starts."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from load_support import API_KEY, Upstream

from observatory.errors import (
    ConfigError,
    ForbiddenTargetError,
    InputError,
    LoadError,
    NotFoundError,
)
from observatory.load.runner import check_target, start_load
from observatory.settings import LoadSettings, ScenarioSettings, Settings, load_settings

MakeScenario = Callable[..., ScenarioSettings]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unknown_scenario_names_the_known_ones(
    tmp_path: Path, settings: Settings, upstream: Upstream, make_scenario: MakeScenario
) -> None:
    with pytest.raises(NotFoundError) as caught:
        start_load(make_scenario("nope.py"), "nope", upstream.url, API_KEY, tmp_path, settings)
    message = str(caught.value)
    assert "unknown scenario 'nope'" in message
    for known in ("chat", "chat_stream", "embeddings", "responses", "anthropic_messages", "mixed"):
        assert known in message
    assert not (tmp_path / "locust.log").exists()


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"model": "open", "rate": -5}, "rate"),
        ({"model": "open", "rate": 10, "arrival": "burst"}, "arrival"),
        ({"model": "open", "rate": 10, "max_in_flight": 0}, "max_in_flight"),
        ({"model": "closed", "users": 0}, "users"),
        ({"model": "closed", "users": 2, "wait_min": "2s", "wait_max": "1s"}, "wait_max"),
        ({"model": "ramp", "users": 2}, "profile"),
    ],
)
def test_bad_profile_values_name_the_field(tmp_path: Path, profile: dict, field: str) -> None:
    config = tmp_path / "observatory.yaml"
    lines = [f"    {key}: {value}" for key, value in profile.items()]
    config.write_text(
        "scenarios:\n  smoke:\n    file: chat.py\n    profile:\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    message = str(caught.value)
    assert "scenarios.smoke.profile" in message
    assert field in message


def test_open_model_needs_a_slot_per_process(
    tmp_path: Path, settings: Settings, upstream: Upstream, make_scenario: MakeScenario
) -> None:
    scenario = make_scenario(
        "chat.py", processes=2, profile={"model": "open", "rate": 5, "max_in_flight": 1}
    )
    with pytest.raises(InputError, match=r"max_in_flight \(1\) must be at least processes \(2\)"):
        start_load(scenario, "chat", upstream.url, API_KEY, tmp_path, settings)


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3:4000", "https://api.openai.com", "http://[2001:db8::1]:80"]
)
def test_targets_outside_the_allowed_list_are_forbidden(
    tmp_path: Path, settings: Settings, make_scenario: MakeScenario, url: str
) -> None:
    with pytest.raises(ForbiddenTargetError, match="neither loopback nor in allowed_targets"):
        start_load(make_scenario("chat.py"), "chat", url, API_KEY, tmp_path, settings)
    assert not any(tmp_path.iterdir())


def test_allowed_targets_and_loopback_pass_the_check() -> None:
    allowed = ["10.0.0.0/8", "gateway.internal"]
    assert check_target("http://10.1.2.3:4000/", allowed).port == 4000
    assert check_target("https://gateway.internal", allowed).port == 443
    assert check_target("http://[::1]:8080", []).host == "::1"
    assert check_target("http://localhost:1", []).host == "localhost"


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://127.0.0.1/", "expected http://HOST"),
        ("http://user:pw@127.0.0.1:4000", "must not carry credentials"),
        ("127.0.0.1:4000", "expected http://HOST"),
    ],
)
def test_malformed_targets_are_input_errors(url: str, match: str) -> None:
    with pytest.raises(InputError, match=match):
        check_target(url, [])


def test_unreachable_gateway_fails_fast(
    tmp_path: Path, settings: Settings, make_scenario: MakeScenario
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    with pytest.raises(LoadError, match=f"gateway at {url} is unreachable"):
        start_load(make_scenario("chat.py"), "chat", url, API_KEY, tmp_path, settings)
    assert time.monotonic() - started < 5
    assert not (tmp_path / "locust.log").exists()


def test_cpu_affinity_outside_this_host_is_a_config_error(
    tmp_path: Path, upstream: Upstream, make_scenario: MakeScenario
) -> None:
    settings = Settings(load=LoadSettings(cpu_affinity=[0, 4096]))
    with pytest.raises(ConfigError, match=r"load.cpu_affinity: CPU\(s\) \[4096\] not available"):
        start_load(make_scenario("chat.py"), "chat", upstream.url, API_KEY, tmp_path, settings)


def test_bad_scenario_param_fails_the_start_up_with_its_message(
    tmp_path: Path, settings: Settings, upstream: Upstream, make_scenario: MakeScenario
) -> None:
    scenario = make_scenario("chat.py", params={"max_tokens": "lots"})
    with pytest.raises(LoadError) as caught:
        start_load(scenario, "chat", upstream.url, API_KEY, tmp_path, settings)
    message = str(caught.value)
    assert "Locust exited at start-up" in message
    assert "scenario param 'max_tokens': expected int" in message
    assert API_KEY not in message
    assert upstream.stats()["requests_total"] == 0


def test_the_service_side_never_imports_gevent_or_locust() -> None:
    code = (
        "import sys\n"
        "import observatory.load.runner, observatory.load.spool, observatory.load.status\n"
        "import observatory.load.histogram, observatory.load.collector\n"
        "print(sorted(m for m in ('gevent', 'locust') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
