"""Real runs racing a service on one database: nobody brings back or takes a run it lost.

A real CLI process validates two runs whose gateway provisions for longer than the lease,
while this test process acts as a service on the same database: it recovers expired leases
and claims queued runs the whole time. And a run ended by recovery while its gateway
provisions stays ended.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.conclude import conclude_run
from observatory.domain import RunStatus, TriggerSource
from observatory.environment import host_facts, host_fingerprint
from observatory.pipeline import RunContext, execute_run
from observatory.service.owner import database_id
from observatory.service.recovery import recover
from observatory.settings import Settings, load_settings
from observatory.store import queue
from observatory.store.db import make_engine, session_factory, transaction
from observatory.store.tables import AlertRow, Run, WindowRow
from observatory.validation import ValidationRequest, plan
from tests.test_pipeline import GATEWAY

CONFIG = f"""
data_dir: DATA_DIR
gateways:
  toy: {{kind: openai, package: toy-gateway, readiness_timeout: 30s}}
builds:
  slow: {{gateway: toy, command: "{GATEWAY} --start-delay 4", version: "1.0"}}
scenarios:
  chat: &chat
    file: chat.py
    profile: {{model: closed, users: 1, wait_min: 50ms, wait_max: 50ms}}
    duration: 3s
    warmup: 1s
    window: 1s
  chat2: *chat
service: {{lease: 3s}}
thresholds: {{neighbour_cpu: null}}
"""


def _service(path: Path, stop: threading.Event, seen: dict[str, list[int]]) -> None:
    """A service on the same database: recovery passes and claims, every half second."""
    settings = load_settings(path, environ={})
    engine = make_engine(settings.db_url)
    sessions, db = session_factory(engine), database_id(engine)
    fingerprint = host_fingerprint(host_facts())
    while not stop.wait(0.5):
        try:
            with transaction(sessions) as session:
                run = queue.claim_next(session, "service", 60.0, host_fingerprint=fingerprint)
                if run is not None:
                    seen["claimed"].append(run.id)
            seen["interrupted"].extend(recover(settings, sessions, db).interrupted)
        except Exception as exc:  # the tables may not exist yet
            seen["errors"].append(len(str(exc)))
    engine.dispose()


def test_a_cli_run_keeps_its_runs_from_a_service_on_the_same_database(tmp_path: Path) -> None:
    path = tmp_path / "observatory.yaml"
    path.write_text(CONFIG.replace("DATA_DIR", str(tmp_path / "data")))
    (tmp_path / "data").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    args = ["--build", "slow", "--scenario", "chat", "--scenario", "chat2", "--baseline", "none"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "observatory", "--config", str(path), "run", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    stop = threading.Event()
    seen: dict[str, list[int]] = {"claimed": [], "interrupted": [], "errors": []}
    service = threading.Thread(target=_service, args=(path, stop, seen))
    service.start()
    try:
        out, err = cli.communicate(timeout=150)
    finally:
        stop.set()
        service.join(30)
    assert seen["claimed"] == [], "the service claimed a run the CLI planned"
    assert seen["interrupted"] == [], "the service took back a run the CLI was provisioning"
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'observatory.db'}")
    with transaction(session_factory(engine)) as session:
        ended = session.execute(select(Run.id, Run.status, Run.end_reason)).all()
    engine.dispose()
    assert [(status, reason) for _, status, reason in ended] == [("done", "completed")] * 2, (
        out + err[-3000:]
    )


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    path = tmp_path / "observatory.yaml"
    path.write_text(CONFIG.replace("DATA_DIR", str(tmp_path / "data")))
    return load_settings(path, environ={"OBSERVATORY_DATABASE_URL": db_url})


def _end_while_provisioning(
    sessions: sessionmaker[Session], settings: Settings, run_id: int
) -> None:
    """Recovery takes the run back from worker "w" and ends it while its gateway starts."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with transaction(sessions) as session:
            if queue.holder(session, run_id) == "provisioning, held by w":
                break
        time.sleep(0.1)
    with transaction(sessions) as session:
        assert queue.expire_leases(session, recoverer="r", dead_owners={"w"})
    conclude_run(run_id, settings, sessions, RunStatus.INTERRUPTED, "taken back", None, owner="r")


def test_a_run_ended_while_it_provisions_is_not_brought_back_to_running(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    request = ValidationRequest(build="slow", scenarios=("chat",), source=TriggerSource.CLI)
    with transaction(sessions) as session:
        run_id = plan(session, settings, request, "host").run_ids[0]
    recovery = threading.Thread(target=_end_while_provisioning, args=(sessions, settings, run_id))
    recovery.start()
    outcome = execute_run(run_id, RunContext(settings, sessions, "w"))
    recovery.join(30)
    assert outcome.status == RunStatus.INTERRUPTED
    assert "no longer ours" in outcome.reason
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        assert (run.status, run.end_reason, run.claimed_by) == ("interrupted", "taken back", "r")
        assert run.started_at is None, "the load never started"
        windows = select(func.count()).select_from(WindowRow).where(WindowRow.run_id == run_id)
        assert session.scalar(windows) == 0
        assert session.scalar(select(func.count()).select_from(AlertRow)) == 1
