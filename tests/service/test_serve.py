"""`observatory serve` as a real process: a real short run, kill -9 mid-run, restart.

The gateway is the pipeline tests' toy gateway (a command build on loopback) in front of
the mock upstream; Locust drives it. Every process the service starts inherits a test mark
in its environment, so the test can see orphans (and clean up after itself whatever happens).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.store.db import transaction
from observatory.store.tables import AlertRow, Run, WindowRow
from tests.service.conftest import TOKEN

TOY = Path(__file__).resolve().parents[1] / "fixtures" / "toy_gateway.py"
MARK = "SERVICE_TEST_MARK"  # inherited by every child (no OBSERVATORY_ prefix: kept)

CONFIG = f"""
data_dir: data
gateways:
  toy:
    kind: openai
    package: toy-gateway
    readiness_timeout: 30s
    timing_header: x-toy-overhead-ms
builds:
  steady:
    gateway: toy
    command: "{sys.executable} {TOY} --host {{host}} --port {{port}} --config {{config}}"
    version: "1.0"
upstream:
  seed: 7
  latency: {{distribution: fixed, mean: 5ms}}
scenarios:
  chat:
    file: chat.py
    profile: {{model: closed, users: 2, spawn_rate: 2, wait_min: 20ms, wait_max: 20ms}}
    duration: 60s
    warmup: 2s
    window: 1s
    params: {{model: gpt-4o-mini}}
service: {{lease: 5s}}
load: {{sample_interval: 1s}}
"""


def _marked(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARK) == mark:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


class ServeProcess:
    """One `observatory serve` subprocess and its HTTP address."""

    def __init__(self, config: Path, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "observatory", "--config", str(config), "serve",
                 "--port", "0", "--no-scheduler"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self.url = self._await_url()

    def _await_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = re.findall(r"listening on (http://127\.0\.0\.1:\d+)", self.log.read_text())
            if found and self.proc.poll() is None:
                return str(found[-1])
            assert self.proc.poll() is None, f"serve exited:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.1)
        raise AssertionError(f"serve did not listen in 60s:\n{self.log.read_text()[-3000:]}")

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )


@pytest.fixture
def service(tmp_path: Path, db_url: str, engine: Engine) -> Iterator[Callable[[], ServeProcess]]:
    """Starts `observatory serve` processes; kills them and all they left at teardown
    (before the ``engine`` fixture empties the database)."""
    config = tmp_path / "observatory.yaml"
    config.write_text(CONFIG)
    mark = uuid.uuid4().hex
    env = {
        **os.environ,
        "OBSERVATORY_DATABASE_URL": db_url,
        "OBSERVATORY_SERVICE__API_TOKEN": TOKEN,
        MARK: mark,
    }
    started: list[ServeProcess] = []

    def start() -> ServeProcess:
        serve = ServeProcess(config, env, tmp_path / f"serve-{len(started) + 1}.log")
        started.append(serve)
        return serve

    start.mark = mark  # type: ignore[attr-defined]
    yield start
    for serve in started:
        if serve.proc.poll() is None:
            serve.proc.send_signal(signal.SIGKILL)
            serve.proc.wait(10)
    leftovers = _marked(mark)
    for proc in leftovers:
        proc.kill()
    psutil.wait_procs(leftovers, timeout=10)


def _wait(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


def _run(serve: ServeProcess, run_id: int) -> dict[str, Any]:
    with serve.client() as client:
        body: dict[str, Any] = client.get(f"/api/v1/runs/{run_id}").json()
    return body


def _counts(sessions: sessionmaker[Session], run_id: int) -> tuple[int, int]:
    with transaction(sessions) as session:
        windows = select(func.count()).select_from(WindowRow).where(WindowRow.run_id == run_id)
        alerts = select(func.count()).select_from(AlertRow).where(AlertRow.run_id == run_id)
        return int(session.scalar(windows) or 0), int(session.scalar(alerts) or 0)


def test_kill_9_mid_run_then_restart_interrupts_the_run_once_and_continues_the_queue(
    service: Callable[[], ServeProcess], sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    mark: str = service.mark  # type: ignore[attr-defined]
    first = service()
    body = {"build": "steady", "scenarios": ["chat"], "baseline": "none"}
    with first.client() as client:
        long_run = client.post("/api/v1/validations", json={**body, "tag": "a"})
        short_run = client.post("/api/v1/validations", json={**body, "tag": "b", "duration": "6s"})
    assert long_run.status_code == short_run.status_code == 202, long_run.text
    (victim,) = long_run.json()["run_ids"]
    (after,) = short_run.json()["run_ids"]

    _wait("the first run to measure a few windows",
          lambda: _run(first, victim)["status"] == "running" and _counts(sessions, victim)[0] >= 3,
          90)  # fmt: skip
    orphans = [p for p in _marked(mark) if p.pid != first.proc.pid]
    assert len(orphans) >= 3, "upstream, gateway and Locust run under the service"
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    windows_at_kill = _counts(sessions, victim)[0]
    assert all(p.is_running() for p in orphans), "kill -9 leaves the children behind"

    second = service()
    ended = _wait("the killed run to end", lambda: _ended(second, victim), 60)
    assert ended["status"] == "interrupted"
    assert ended["end_reason"].startswith("lease expired: the worker stopped")
    assert ended["report_ready"] is True
    _, alive = psutil.wait_procs(orphans, timeout=15)
    assert alive == [], f"orphans left: {[p.pid for p in alive]}"
    windows, alerts = _counts(sessions, victim)
    assert windows >= windows_at_kill, "the windows measured before the kill are kept"
    assert alerts == 1

    done = _wait("the next queued run to finish", lambda: _ended(second, after), 120)
    assert done["status"] == "done", done["end_reason"]
    assert done["verdict"] is not None
    assert _counts(sessions, after)[1] == 1
    with second.client() as client:
        page = client.get(f"/runs/{victim}/report")
    assert page.status_code == 200
    assert "lease expired" in page.text

    second.proc.send_signal(signal.SIGTERM)
    assert second.proc.wait(60) == 0
    assert _counts(sessions, victim)[1] == 1, "no alert twice"
    assert [p for p in _marked(mark) if p.is_running()] == []


def _ended(serve: ServeProcess, run_id: int) -> dict[str, Any] | None:
    run = _run(serve, run_id)
    return run if run["status"] in ("done", "error", "aborted", "interrupted") else None


def test_trigger_waits_for_a_real_run_and_sigterm_stops_a_run_with_its_data(
    service: Callable[[], ServeProcess], sessions: sessionmaker[Session]
) -> None:
    mark: str = service.mark  # type: ignore[attr-defined]
    serve = service()
    trigger = subprocess.run(
        [sys.executable, "-m", "observatory", "trigger", "--server", serve.url,
         "--build", "steady", "--scenario", "chat", "--duration", "6s", "--baseline", "none",
         "--wait", "--poll", "1s", "--timeout", "3m"],
        env={**os.environ, "OBSERVATORY_API_TOKEN": TOKEN}, capture_output=True, text=True,
        timeout=240, check=False,
    )  # fmt: skip
    # Six seconds without a baseline: no verdict can be a pass; the convention says 3.
    assert trigger.returncode == 3, trigger.stdout + trigger.stderr
    assert "run 1 chat: done" in trigger.stdout
    assert "/runs/1/report" in trigger.stdout
    assert "(exit 3)" in trigger.stdout

    with serve.client() as client:
        queued = client.post(
            "/api/v1/validations",
            json={"build": "steady", "scenarios": ["chat"], "baseline": "none", "tag": "long"},
        )
    (run_id,) = queued.json()["run_ids"]
    _wait("the long run to measure", lambda: _counts(sessions, run_id)[0] >= 3, 90)
    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(120) == 0
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        status, reason, report = run.status, run.end_reason, run.report_path
    assert (status, reason) == ("aborted", "stopped by the operator")
    assert report is not None
    windows, alerts = _counts(sessions, run_id)
    assert windows >= 3
    assert alerts == 1
    assert [p for p in _marked(mark) if p.is_running()] == [], "a graceful stop leaves nothing"


def test_a_taken_port_fails_the_start_before_any_run_is_claimed(
    tmp_path: Path, db_url: str, sessions: sessionmaker[Session]
) -> None:
    config = tmp_path / "observatory.yaml"
    config.write_text(CONFIG)
    env = {**os.environ, "OBSERVATORY_DATABASE_URL": db_url}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "observatory", "--config", str(config), "serve",
             "--port", str(port)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert result.returncode == 4, result.stderr
    assert f"HTTP server did not start on 127.0.0.1:{port}" in result.stderr
    assert "observatory.service.worker" not in result.stderr, "no worker was started"
