"""Fault scenarios through the whole run pipeline with real processes: the private Redis and
its proxy come and go with the run, phases are stored with what the fault point measured,
their thresholds decide the verdict, and the report shows them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import FindingVerdict, RunStatus, Verdict
from observatory.pipeline import RunContext, execute_run
from observatory.settings import Settings
from observatory.store.db import transaction
from observatory.store.tables import FaultPhaseRow, FindingRow, Run
from tests.faults.conftest import fault_settings, queue_run

PROFILE = {"users": 3, "spawn_rate": 10, "wait_min": "50ms", "wait_max": "50ms"}


def scenario(file: str, phase: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {
        "file": file,
        "profile": dict(PROFILE, **params.pop("profile", {})),
        "duration": "18s",
        "warmup": "2s",
        "window": "1s",
        "params": {"stream_share": 0.0, **params},
        "phases": [phase],
    }


@pytest.fixture
def pipeline_settings(tmp_path: Path) -> Settings:
    scenarios = {
        "redis-slow": scenario(
            "redis_slow.py",
            {"at": "7s", "fault": "redis_slow", "duration": "5s",
             "params": {"delay": "150ms", "max_p99_ratio": 2, "max_error_rate": 0.01}},
        ),
        "control-plane-pressure": scenario(
            "control_plane_pressure.py",
            {"at": "7s", "fault": "control_plane", "duration": "5s",
             "params": {"max_health_p99": "5ms"}},
            control_plane_users=3, health_interval=0.2, profile={"users": 6},
        ),
        "provider-degraded": scenario(
            "provider_degraded.py",
            {"at": "7s", "fault": "provider_errors", "duration": "5s",
             "params": {"error_rate": 0.5, "error_codes": [503], "max_error_rate": 0.1}},
            stream_share=0.5, timeout=10.0,
        ),
    }  # fmt: skip
    # Other test suites share this host's two cores: a busy host must not turn the verdicts
    # these tests check into "inconclusive (load generator saturated)".
    load = {"sample_interval": "1s", "saturation_cpu": 1.0}
    return fault_settings(tmp_path, scenarios, load=load)


def run(
    settings: Settings, sessions: sessionmaker[Session], scenario_name: str, build: str = "fault"
) -> int:
    run_id = queue_run(sessions, settings, scenario_name, build)
    outcome = execute_run(run_id, RunContext(settings, sessions, "test"))
    assert outcome.status == RunStatus.DONE, outcome.reason
    assert outcome.report_path is not None
    return run_id


def rows(sessions: sessionmaker[Session], table: Any, run_id: int) -> list[Any]:
    with transaction(sessions) as session:
        found = list(session.scalars(select(table).where(table.run_id == run_id)))
        session.expunge_all()
    return found


def gate(findings: list[FindingRow], metric: str) -> FindingRow:
    [found] = [f for f in findings if f.metric == metric]
    return found


def redis_servers() -> list[str]:
    """Our redis-server children still alive (others may exit while we look)."""
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "redis-server" in child.name() and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{child.pid} {child.cmdline()}")
        except psutil.NoSuchProcess:
            continue
    return alive


def test_redis_slow_run_fails_its_p99_gate(
    pipeline_settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = run(pipeline_settings, sessions, "redis-slow")
    assert redis_servers() == []  # stopped with the run
    [phase] = rows(sessions, FaultPhaseRow, run_id)
    assert phase.ended_at is not None
    seen = phase.measured["during"]
    assert seen["mode"] == "slow"
    assert seen["delayed_chunks"] > 20  # the gateway's GETs went through the proxy
    assert 0.15 <= seen["held_s_max"] < 1.0  # at least the delay; more only on a busy host
    findings = rows(sessions, FindingRow, run_id)
    ratio = gate(findings, "phase.redis_slow.gate.p99_ratio")
    assert ratio.verdict == FindingVerdict.REGRESSION
    assert ratio.candidate is not None
    assert ratio.candidate >= 300.0  # a GET held 150 ms each way on every request
    assert gate(findings, "phase.redis_slow.gate.error_rate").verdict == FindingVerdict.UNCHANGED
    assert any(f.metric == "phase.redis_slow.impact.latency_p99" for f in findings)
    with transaction(sessions) as session:
        stored = session.get(Run, run_id)
        assert stored is not None
        assert stored.verdict == Verdict.REGRESSION
        report = Path(str(stored.report_path)).read_text()
    assert "redis_slow" in report
    assert "phase.redis_slow.gate.p99_ratio" in report


def test_control_plane_run_reports_health_under_pressure(
    pipeline_settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = run(pipeline_settings, sessions, "control-plane-pressure")
    [phase] = rows(sessions, FaultPhaseRow, run_id)
    assert phase.measured["health_probe"]["probes"] >= 4
    findings = rows(sessions, FindingRow, run_id)
    health = gate(findings, "phase.control_plane.gate.health_p99")
    assert health.name == "health:*"
    assert health.verdict == FindingVerdict.REGRESSION  # /health blocks the gateway 20 ms
    assert health.candidate is not None
    assert health.candidate > 5.0
    impact = {f.name for f in findings if f.metric == "phase.control_plane.impact.health_p99"}
    assert impact == {"health:/health/liveliness", "health:/health/readiness"}
    # the control-plane requests themselves never count as the data plane's errors or latency
    judged = [f for f in findings if f.metric.startswith("phase.control_plane.impact.latency")]
    assert judged
    assert all(not f.name.startswith(("control:", "health:")) for f in judged)


def test_provider_degraded_run_fails_its_error_gate(
    pipeline_settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = run(pipeline_settings, sessions, "provider-degraded", build="toy")
    [phase] = rows(sessions, FaultPhaseRow, run_id)
    assert phase.measured["knobs"] == {"error_rate": 0.5, "error_codes": [503]}
    assert phase.measured["after"]["faults"]["error_503"] > 5  # the provider did fail
    findings = rows(sessions, FindingRow, run_id)
    errors = gate(findings, "phase.provider_errors.gate.error_rate")
    assert errors.verdict == FindingVerdict.REGRESSION  # the toy gateway passes 503s on
    assert errors.candidate is not None
    assert 25.0 < errors.candidate < 75.0  # percent of data-plane requests
    impact = {f.name for f in findings if f.metric == "phase.provider_errors.impact.latency_p99"}
    assert impact == {"chat:gpt-4o-mini", "chat_stream:gpt-4o-mini"}
