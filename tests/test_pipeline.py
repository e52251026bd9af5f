"""The run pipeline end to end with real processes: mock upstream, a gateway, Locust."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import RunStatus, TriggerSource, Verdict
from observatory.environment import host_facts, host_fingerprint
from observatory.pipeline import RunContext, execute_run
from observatory.settings import Settings, load_settings
from observatory.store.db import transaction
from observatory.store.tables import AlertRow, ResourceSampleRow, Run, WindowRow
from observatory.validation import ValidationRequest, plan
from tests.processes import children_of_us

TOY = Path(__file__).parent / "fixtures" / "toy_gateway.py"

GATEWAY = f"{sys.executable} {TOY} --host {{host}} --port {{port}} --config {{config}}"

CONFIG = f"""
data_dir: data
gateways:
  toy:
    kind: openai
    package: toy-gateway
    readiness_timeout: 30s
    timing_header: x-toy-overhead-ms
builds:
  steady: {{gateway: toy, command: "{GATEWAY}", version: "1.0"}}
  crashy: {{gateway: toy, command: "{GATEWAY} --crash-after 6", version: "1.1"}}
  gone: {{gateway: toy, url: "http://127.0.0.1:9", version: "0"}}
upstream:
  seed: 7
  latency: {{distribution: fixed, mean: 5ms}}
scenarios:
  chat:
    file: chat.py
    profile: {{model: closed, users: 2, spawn_rate: 2, wait_min: 20ms, wait_max: 20ms}}
    duration: 12s
    warmup: 2s
    window: 1s
    params: {{model: gpt-4o-mini}}
abort: {{error_rate: 0.5, sustained: 3s}}
load: {{sample_interval: 1s}}
"""


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    path = tmp_path / "observatory.yaml"
    path.write_text(CONFIG)
    return load_settings(path, environ={"OBSERVATORY_DATABASE_URL": db_url})


def queue(sessions: sessionmaker[Session], settings: Settings, build: str) -> int:
    request = ValidationRequest(build=build, scenarios=("chat",), source=TriggerSource.CLI)
    with transaction(sessions) as session:
        return plan(session, settings, request, host_fingerprint(host_facts())).run_ids[-1]


def test_a_short_run_stores_windows_samples_verdict_alert_and_report(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = queue(sessions, settings, "steady")
    seen: list[str] = []
    ctx = RunContext(settings, sessions, "test", on_progress=lambda p: seen.append(p.status))
    outcome = execute_run(run_id, ctx)
    assert outcome.status == RunStatus.DONE, outcome.reason
    assert outcome.verdict in (Verdict.NO_BASELINE, Verdict.INCONCLUSIVE), outcome.reason
    assert outcome.report_path is not None
    assert outcome.report_path.is_file()
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert run.started_at is not None
        assert run.ended_at is not None
        assert run.environment["gateway"]["version"] == "1.0"
        latency = session.scalars(
            select(WindowRow).where(WindowRow.run_id == run_id, WindowRow.series == "latency")
        ).all()
        roles = set(
            session.scalars(
                select(ResourceSampleRow.role).where(ResourceSampleRow.run_id == run_id)
            )
        )
        alerts = session.scalar(
            select(func.count()).select_from(AlertRow).where(AlertRow.run_id == run_id)
        )
    assert sum(w.count for w in latency) > 100  # 2 users, ~20 ms apart, for 12 s
    assert {w.series for w in latency} == {"latency"}
    assert {"gateway", "loadgen", "neighbours"} <= roles
    assert alerts == 1
    assert {"provisioning", "running"} <= set(seen)
    assert children_of_us() == []  # upstream, gateway and Locust all gone


def test_a_gateway_crash_ends_the_run_early_as_a_regression(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = queue(sessions, settings, "crashy")
    started = time.monotonic()
    outcome = execute_run(run_id, RunContext(settings, sessions, "test"))
    assert outcome.status == RunStatus.DONE
    assert outcome.verdict == Verdict.REGRESSION
    assert "gateway crashed" in outcome.reason
    assert "exit code 3" in outcome.reason
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert "crashing on purpose" in run.environment["crash"]
        kinds = list(session.scalars(select(AlertRow.kind).where(AlertRow.run_id == run_id)))
    assert kinds == ["crash"]
    assert time.monotonic() - started < 60  # ended early, not after its full duration
    assert children_of_us() == []


def test_cancel_from_another_process_keeps_the_data(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = queue(sessions, settings, "steady")

    def cancel_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with transaction(sessions) as session:
                run = session.get(Run, run_id)
                if (
                    run is not None
                    and run.status == RunStatus.RUNNING
                    and run.progress.get("elapsed_s", 0) > 5
                ):
                    run.cancel_requested = True
                    return
            time.sleep(0.5)

    threading.Thread(target=cancel_when_running, daemon=True).start()
    outcome = execute_run(run_id, RunContext(settings, sessions, "test"))
    assert outcome.status == RunStatus.ABORTED
    assert "cancelled" in outcome.reason
    with transaction(sessions) as session:
        windows = session.scalar(
            select(func.count()).select_from(WindowRow).where(WindowRow.run_id == run_id)
        )
    assert windows
    assert windows > 0


def test_an_unreachable_gateway_is_an_observatory_error_not_a_verdict(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = queue(sessions, settings, "gone")
    outcome = execute_run(run_id, RunContext(settings, sessions, "test"))
    assert outcome.status == RunStatus.ERROR
    assert outcome.verdict is None
    assert "http://127.0.0.1:9" in outcome.reason


def test_a_run_taken_back_by_recovery_stops_without_overwriting_it(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = queue(sessions, settings, "steady")

    def take_back_when_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with transaction(sessions) as session:
                run = session.get(Run, run_id)
                if run is not None and run.status == RunStatus.RUNNING:
                    run.status, run.claimed_by = RunStatus.INTERRUPTED, "recovery"
                    run.end_reason = "lease expired"
                    return
            time.sleep(0.3)

    threading.Thread(target=take_back_when_running, daemon=True).start()
    outcome = execute_run(run_id, RunContext(settings, sessions, "test"))
    assert outcome.status == RunStatus.INTERRUPTED
    assert "lease was lost" in outcome.reason
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert (run.status, run.end_reason, run.verdict) == ("interrupted", "lease expired", None)
        assert session.scalar(select(func.count()).select_from(AlertRow)) == 0
    assert children_of_us() == []
