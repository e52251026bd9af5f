"""Fixtures of the fault tests: a private Redis behind the fault proxy, the fault gateway,
settings and a queued run for the phase driver to write its phases to."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from observatory.builds.provision import RunningGateway, start_gateway
from observatory.domain import TriggerSource
from observatory.environment import host_facts, host_fingerprint
from observatory.faults.proxy import FaultProxy
from observatory.faults.redis_server import RedisServer, RunRedis
from observatory.settings import Settings
from observatory.store.db import transaction
from observatory.validation import ValidationRequest, plan

GATEWAY_SCRIPT = Path(__file__).with_name("fault_gateway.py")
GATEWAY_COMMAND = f"{sys.executable} {GATEWAY_SCRIPT} --host {{host}} --port {{port}}"
# The lead's toy gateway forwards to the mock upstream (the fault gateway answers itself).
TOY_SCRIPT = Path(__file__).parents[1] / "fixtures" / "toy_gateway.py"
TOY_COMMAND = f"{sys.executable} {TOY_SCRIPT} --host {{host}} --port {{port}} --config {{config}}"


def fault_settings(
    tmp_path: Path, scenarios: dict[str, Any] | None = None, **extra: Any
) -> Settings:
    """Settings with the fault gateway as a command build and the given scenarios."""
    values: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "gateways": {
            "fault": {"kind": "openai", "readiness_timeout": "30s", "timing_header": None}
        },
        "builds": {
            "fault": {"gateway": "fault", "command": GATEWAY_COMMAND, "version": "1.0"},
            "toy": {"gateway": "fault", "command": TOY_COMMAND, "version": "1.0"},
        },
        "scenarios": scenarios
        or {
            "chat": {
                "file": "chat.py",
                "profile": {"users": 1},
                "duration": 30,
                "warmup": 1,
                "window": 1,
            }
        },
        "upstream": {"seed": 3, "latency": {"distribution": "fixed", "mean": "5ms"}},
        # these tests judge the fault logic; the host they run on may be shared
        "thresholds": {"neighbour_cpu": None},
        **extra,
    }
    return Settings.model_validate(values)


def queue_run(
    sessions: sessionmaker[Session], settings: Settings, scenario: str, build: str = "fault"
) -> int:
    request = ValidationRequest(build=build, scenarios=(scenario,), source=TriggerSource.CLI)
    with transaction(sessions) as session:
        return plan(session, settings, request, host_fingerprint(host_facts())).run_ids[-1]


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RunRedis]:
    with RedisServer(tmp_path / "redis") as server, FaultProxy(server.address) as proxy:
        yield RunRedis(server, proxy)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return fault_settings(tmp_path)


@pytest.fixture
def gateway(settings: Settings, tmp_path: Path) -> Iterator[RunningGateway]:
    build = settings.builds["fault"]
    running = start_gateway(
        build, settings.gateways["fault"], settings, "http://127.0.0.1:9", tmp_path / "gw"
    )
    with running:
        yield running
