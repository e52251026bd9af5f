"""`observatory run` as a user runs it: progress, Ctrl-C, exit codes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.test_pipeline import GATEWAY

CONFIG = f"""
gateways:
  toy: {{kind: openai, package: toy-gateway, readiness_timeout: 30s}}
builds:
  steady: {{gateway: toy, command: "{GATEWAY}", version: "1.0"}}
scenarios:
  chat:
    file: chat.py
    profile: {{model: closed, users: 2, wait_min: 20ms, wait_max: 20ms}}
    duration: 2m
    warmup: 2s
    window: 1s
"""


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "observatory.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    return subprocess.Popen(
        [sys.executable, "-m", "observatory", "run", *args],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_ctrl_c_stops_cleanly_marks_aborted_and_keeps_the_data(tmp_path: Path) -> None:
    proc = start(tmp_path, "--build", "steady", "--scenario", "chat", "--baseline", "none")
    db = tmp_path / "data" / "observatory.db"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _windows(db):
        time.sleep(1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err[-2000:]  # aborted: no verdict to gate on
    assert "stopping: the run will be marked aborted" in err
    assert "run 1: aborted" in out
    assert "[running]" in err  # the progress line
    assert re.search(r"others on host \d+\.\d\d cores", err)  # the neighbours' CPU
    assert _windows(db) > 0
    with create_engine(f"sqlite:///{db}").connect() as conn:
        status, reason = conn.execute(text("SELECT status, end_reason FROM runs")).one()
    assert (status, reason) == ("aborted", "stopped by the operator")


def test_bad_duration_is_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    proc = start(tmp_path, "--build", "steady", "--scenario", "chat", "--duration", "soon")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "--duration: bad duration 'soon'" in err
    assert not (tmp_path / "data" / "observatory.db").exists()


def _windows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with create_engine(f"sqlite:///{db}").connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM windows")).scalar_one())
    except Exception:
        return 0
