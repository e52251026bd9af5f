"""`observatory alerts list | retry | test | deliver` as a user runs them (subprocesses)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_fake import (
    BOT_TOKEN,
    CHANNEL,
    WEBHOOK_PATH,
    FakeSlack,
    cli_env,
    enqueue_runs,
    http,
    make_build,
    rows,
    write_config,
)
from sqlalchemy.orm import Session, sessionmaker

from observatory.store import db


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def cli_sessions(sqlite_url: str) -> Iterator[sessionmaker[Session]]:
    """The CLI tests are about the commands; the store runs on both databases elsewhere."""
    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    yield db.session_factory(engine)
    engine.dispose()


def run_cli(
    tmp_path: Path, db_url: str, slack: dict[str, Any], *args: str
) -> subprocess.CompletedProcess[str]:
    config = write_config(tmp_path, db_url, slack)
    cmd = [sys.executable, "-m", "observatory", "--config", str(config), "alerts", *args]
    return subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=60)


def test_test_without_slack_exits_2_and_says_what_to_set(tmp_path: Path, sqlite_url: str) -> None:
    result = run_cli(tmp_path, sqlite_url, {}, "test")
    assert result.returncode == 2
    assert "Slack is not configured" in result.stderr
    assert "OBSERVATORY_SLACK__WEBHOOK_URL" in result.stderr


def test_test_sends_one_sample_message_to_the_webhook(
    tmp_path: Path, sqlite_url: str, fake_slack: FakeSlack
) -> None:
    result = run_cli(tmp_path, sqlite_url, {"webhook_url": fake_slack.webhook_url}, "test")
    assert result.returncode == 0, result.stderr
    assert "acknowledged by incoming webhook" in result.stdout
    [received] = fake_slack.received
    assert received.acked
    assert "test message" in received.body["text"]
    assert WEBHOOK_PATH not in result.stdout + result.stderr


def test_test_with_a_bot_token_prints_the_message_ts(
    tmp_path: Path, sqlite_url: str, fake_slack: FakeSlack
) -> None:
    slack = {"token": BOT_TOKEN, "channel": CHANNEL, "api_url": fake_slack.api_url}
    result = run_cli(tmp_path, sqlite_url, slack, "test")
    assert result.returncode == 0, result.stderr
    assert f"acknowledged by channel {CHANNEL} (ts 1700000000.000001)" in result.stdout
    assert BOT_TOKEN not in result.stdout + result.stderr


def test_test_reports_a_refusal_with_exit_4_and_no_secret(
    tmp_path: Path, sqlite_url: str, fake_slack: FakeSlack
) -> None:
    fake_slack.default = http(404, f"no_service {fake_slack.webhook_url}")
    result = run_cli(tmp_path, sqlite_url, {"webhook_url": fake_slack.webhook_url}, "test")
    assert result.returncode == 4
    assert (
        "test message to incoming webhook failed: HTTP 404: no_service <redacted>" in result.stderr
    )
    assert WEBHOOK_PATH not in result.stdout + result.stderr


def test_deliver_once_without_slack_logs_and_list_shows_them(
    tmp_path: Path, sqlite_url: str, cli_sessions: sessionmaker[Session]
) -> None:
    runs = enqueue_runs(cli_sessions, make_build(cli_sessions), 2)
    result = run_cli(tmp_path, sqlite_url, {}, "deliver", "--once")
    assert result.returncode == 0, result.stderr
    assert "2 alert(s) delivered" in result.stdout
    assert f"run #{runs[0]}" in result.stderr  # the log is where the alert went
    listing = run_cli(tmp_path, sqlite_url, {}, "list")
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["ID", "RUN", "KIND", "STATE", "TRIES", "CREATED", "ERROR"]
    assert [line.split()[1:5] for line in lines[1:]] == [
        [str(runs[1]), "regression", "logged", "1"],
        [str(runs[0]), "regression", "logged", "1"],
    ]


def test_failed_alert_is_listed_retried_and_then_delivered(
    tmp_path: Path, sqlite_url: str, cli_sessions: sessionmaker[Session], fake_slack: FakeSlack
) -> None:
    slack = {"webhook_url": fake_slack.webhook_url}
    [run] = enqueue_runs(cli_sessions, make_build(cli_sessions), 1)
    fake_slack.default = http(404, f"channel_not_found at {fake_slack.webhook_url}")
    assert run_cli(tmp_path, sqlite_url, slack, "deliver", "--once").returncode == 0
    listing = run_cli(tmp_path, sqlite_url, slack, "list", "--state", "failed")
    [line] = listing.stdout.splitlines()[1:]
    assert "failed" in line
    assert "HTTP 404: channel_not_found at <redacted>" in line
    assert WEBHOOK_PATH not in listing.stdout
    alert_id = rows(cli_sessions)[0].id

    fake_slack.default = http(200, "ok")  # the channel was fixed
    retried = run_cli(tmp_path, sqlite_url, slack, "retry", str(alert_id))
    assert retried.returncode == 0, retried.stderr
    assert f"alert {alert_id} is pending again" in retried.stdout
    assert run_cli(tmp_path, sqlite_url, slack, "deliver", "--once").returncode == 0
    assert rows(cli_sessions)[0].state == "sent"
    assert fake_slack.acked(run) == 1
    assert run_cli(tmp_path, sqlite_url, slack, "list", "--state", "failed").stdout.count("\n") == 1


def test_retry_refuses_what_is_not_failed(
    tmp_path: Path, sqlite_url: str, cli_sessions: sessionmaker[Session]
) -> None:
    enqueue_runs(cli_sessions, make_build(cli_sessions), 1)
    alert_id = rows(cli_sessions)[0].id
    pending = run_cli(tmp_path, sqlite_url, {}, "retry", str(alert_id))
    assert pending.returncode == 2
    assert "is pending; only failed alerts can be retried" in pending.stderr
    unknown = run_cli(tmp_path, sqlite_url, {}, "retry", "999")
    assert unknown.returncode == 2
    assert "unknown alert 999" in unknown.stderr
    bad_state = run_cli(tmp_path, sqlite_url, {}, "list", "--state", "lost")
    assert bad_state.returncode == 2
    assert "pending" in bad_state.stderr  # names the accepted states
