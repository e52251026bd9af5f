"""The phase driver applies each fault on time, measures it at the fault point, removes it,
and stores the phase with what was measured (SQLite and Postgres)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from observatory.builds.provision import RunningGateway
from observatory.errors import ConfigError
from observatory.faults.control_plane import SWITCH_NAME, read_switch
from observatory.faults.redis_server import RunRedis
from observatory.faults.resp import RespConnection
from observatory.phases import PhaseDriver, default_factory
from observatory.settings import PhaseSettings, Settings, UpstreamSettings
from observatory.store.db import transaction
from observatory.store.tables import FaultPhaseRow, utcnow
from observatory.upstream.server import UpstreamServer
from tests.faults.conftest import queue_run

AT, FOR = 1.0, 2.0  # the phase: from 1 s to 3 s
RUN_S = 4.5


def phase(fault: str, **params: Any) -> PhaseSettings:
    return PhaseSettings.model_validate(
        {"at": AT, "fault": fault, "duration": FOR, "params": params}
    )


def drive(driver: PhaseDriver, probe: Callable[[], Any]) -> list[tuple[float, Any]]:
    """Tick the driver as the pipeline does and probe the fault point between ticks."""
    began = time.monotonic()
    driver.begin(utcnow())
    samples = []
    try:
        while (elapsed := time.monotonic() - began) < RUN_S:
            driver.tick()
            samples.append((elapsed, probe()))
            time.sleep(0.05)
    finally:
        driver.stop()
    return samples


def split(samples: list[tuple[float, Any]]) -> tuple[list[Any], list[Any], list[Any]]:
    """Probes well before, well inside and well after the phase (ticks have some slack)."""
    before = [v for t, v in samples if t < AT - 0.2]
    during = [v for t, v in samples if AT + 0.3 < t < AT + FOR - 0.6]
    after = [v for t, v in samples if t > AT + FOR + 0.6]
    assert all((before, during, after)), "every part of the timeline needs probes"
    return before, during, after


def stored(sessions: sessionmaker[Session], run_id: int) -> list[FaultPhaseRow]:
    with transaction(sessions) as session:
        rows = list(session.scalars(select(FaultPhaseRow).where(FaultPhaseRow.run_id == run_id)))
        session.expunge_all()
    return rows


def test_redis_slow_holds_commands_during_its_phase_only(
    redis: RunRedis, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    run_id = queue_run(sessions, settings, "chat")
    factory = default_factory(settings, "http://127.0.0.1:9", redis=redis)
    driver = PhaseDriver(run_id, sessions, [phase("redis_slow", delay=0.2)], factory)
    client = RespConnection(redis.host, redis.port, timeout=5)

    def probe() -> float:
        began = time.perf_counter()
        assert client.call("PING") == b"PONG"  # slow, never failing
        return time.perf_counter() - began

    before, during, after = split(drive(driver, probe))
    client.close()
    assert max(before) < 0.1
    assert min(during) >= 0.4  # 0.2 s held each way
    assert max(after) < 0.1
    [row] = stored(sessions, run_id)
    assert row.started_at is not None
    assert row.ended_at is not None
    assert (row.ended_at - row.started_at).total_seconds() == pytest.approx(FOR, abs=0.5)
    assert row.params == {"delay": 0.2}
    seen = row.measured["during"]
    assert seen["mode"] == "slow"
    assert seen["delayed_chunks"] >= 2 * len(during)  # every probe: command and reply
    assert 0.2 <= seen["held_s_max"] < 1.0  # at least the delay; more only on a busy host
    assert row.measured["redis_answers_after"] is True


@pytest.mark.parametrize("mode", ["refuse", "blackhole"])
def test_redis_down_during_its_phase_only(
    redis: RunRedis, settings: Settings, sessions: sessionmaker[Session], mode: str
) -> None:
    run_id = queue_run(sessions, settings, "chat")
    factory = default_factory(settings, "http://127.0.0.1:9", redis=redis)
    driver = PhaseDriver(run_id, sessions, [phase("redis_down", mode=mode)], factory)

    def probe() -> str:
        try:
            with RespConnection(redis.host, redis.port, timeout=0.2) as client:
                return "pong" if client.call("PING") == b"PONG" else "odd"
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "no answer"

    before, during, after = split(drive(driver, probe))
    expected = "refused" if mode == "refuse" else "no answer"
    assert set(before) == {"pong"}
    assert set(during) == {expected}
    assert set(after) == {"pong"}
    [row] = stored(sessions, run_id)
    seen = row.measured["during"]
    assert seen["mode"] == mode
    if mode == "refuse":
        assert seen["accepted"] == 0
    else:
        assert seen["blackholed"] >= len(during)  # every probe swallowed
    assert row.measured["redis_answers_after"] is True


def test_provider_errors_show_in_the_upstream_stats(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    run_id = queue_run(sessions, settings, "chat")
    with UpstreamServer(UpstreamSettings(seed=1)) as upstream:
        factory = default_factory(settings, upstream.url)
        faults = [phase("provider_errors", error_rate=1.0, error_codes=[503])]
        driver = PhaseDriver(run_id, sessions, faults, factory)
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

        def probe() -> int:
            url = f"{upstream.url}/v1/chat/completions"
            return httpx.post(url, json=body, timeout=5).status_code

        before, during, after = split(drive(driver, probe))
    assert set(before) == {200}
    assert set(during) == {503}
    assert set(after) == {200}
    [row] = stored(sessions, run_id)
    assert row.measured["after"]["faults"]["error_503"] >= len(during)
    assert row.measured["knobs"] == {"error_rate": 1.0, "error_codes": [503]}


def test_control_plane_switch_and_health_probe(
    gateway: RunningGateway, settings: Settings, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    run_id = queue_run(sessions, settings, "chat")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / SWITCH_NAME).write_text("{}")  # left over by an earlier attempt
    factory = default_factory(settings, "http://127.0.0.1:9", gateway=gateway, run_dir=run_dir)
    faults = [phase("control_plane", endpoints={"/model/info": 1}, users=2)]
    driver = PhaseDriver(run_id, sessions, faults, factory)

    def probe() -> bool:
        return read_switch(run_dir / SWITCH_NAME) is not None

    before, during, after = split(drive(driver, probe))
    assert set(before) == {False}  # the stale switch was removed before the run began
    assert set(during) == {True}
    assert set(after) == {False}
    [row] = stored(sessions, run_id)
    health = row.measured["health_probe"]
    assert health["path"] == "/health/liveliness"
    assert health["probes"] >= 1
    assert health["failures"] == {}
    assert health["max_ms"] < 1000
    assert row.measured["endpoints"] == {"/model/info": 1.0}
    assert row.measured["users"] == 2


def test_stop_ends_an_active_fault(
    redis: RunRedis, settings: Settings, sessions: sessionmaker[Session]
) -> None:
    run_id = queue_run(sessions, settings, "chat")
    factory = default_factory(settings, "http://127.0.0.1:9", redis=redis)
    long_phase = PhaseSettings(at=0.0, fault="redis_down", duration=600.0, params={})
    driver = PhaseDriver(run_id, sessions, [long_phase], factory)
    driver.begin(utcnow())
    driver.tick()
    assert redis.proxy.mode == "refuse"
    driver.stop()  # the run ended early: the fault must not outlive it
    assert redis.proxy.mode == "pass"
    [row] = stored(sessions, run_id)
    assert row.ended_at is not None


def test_a_fault_without_its_fault_point_fails_before_any_load(
    settings: Settings, sessions: sessionmaker[Session]
) -> None:
    run_id = queue_run(sessions, settings, "chat")
    factory = default_factory(settings, "http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="fault 'redis_slow' needs the run's Redis"):
        PhaseDriver(run_id, sessions, [phase("redis_slow")], factory)
    with pytest.raises(ConfigError, match="'control_plane' needs the run's gateway"):
        PhaseDriver(run_id, sessions, [phase("control_plane")], factory)
    assert stored(sessions, run_id) == []
