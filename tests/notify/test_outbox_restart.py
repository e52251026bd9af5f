"""Nothing lost when the delivery loop is killed (kill -9) mid-send and started again.

The loop runs as the real CLI (`observatory alerts deliver`) in a subprocess against the
fake Slack server, on SQLite and Postgres.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from slack_fake import (
    WEBHOOK_PATH,
    FakeSlack,
    cli_env,
    enqueue_runs,
    make_build,
    rows,
    write_config,
)
from sqlalchemy.orm import Session, sessionmaker

ALERTS = 10


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


@pytest.fixture
def start_loop(
    tmp_path: Path, db_url: str, fake_slack: FakeSlack
) -> Iterator[Callable[[], subprocess.Popen[str]]]:
    config = write_config(
        tmp_path,
        db_url,
        {"webhook_url": fake_slack.webhook_url, "timeout": 1, "retry_initial": 0.5},
    )
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        cmd = [
            sys.executable,
            "-m",
            "observatory",
            "--config",
            str(config),
            "alerts",
            "deliver",
            "--interval",
            "100ms",
        ]
        proc = subprocess.Popen(
            cmd, env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


def test_killed_loop_loses_nothing_and_resends_only_what_was_in_flight(
    sessions: sessionmaker[Session],
    fake_slack: FakeSlack,
    start_loop: Callable[[], subprocess.Popen[str]],
) -> None:
    runs = enqueue_runs(sessions, make_build(sessions), ALERTS)
    fake_slack.delay = 0.25  # every request stays in flight a while

    first = start_loop()
    _wait_for(
        lambda: len(fake_slack.received) >= 3 and not fake_slack.received[-1].acked,
        30,
        "a request in flight after a few deliveries",
    )
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    in_flight = fake_slack.received[-1].run
    assert first.returncode == -signal.SIGKILL
    assert any(r.state == "pending" for r in rows(sessions))

    second = start_loop()
    _wait_for(lambda: all(r.state == "sent" for r in rows(sessions)), 60, "every alert sent")
    second.send_signal(signal.SIGTERM)
    _, stderr = second.communicate(timeout=10)
    assert second.returncode == 0, stderr  # SIGTERM stops the loop cleanly

    received = {run: len(fake_slack.received_for(run)) for run in runs}
    assert all(count >= 1 for count in received.values()), received  # nothing lost
    # At-least-once: only the alert in flight at the kill may arrive twice.
    assert {run for run, count in received.items() if count > 1} <= {in_flight}
    assert sum(fake_slack.acked(run) for run in runs) >= ALERTS
    assert WEBHOOK_PATH not in stderr
