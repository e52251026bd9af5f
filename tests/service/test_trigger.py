"""`observatory trigger` against the real app on a loopback server."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.orm import Session, sessionmaker

from observatory.builds.spec import REFUSED_RELEASES
from observatory.cli import _invoke
from observatory.store.db import transaction
from observatory.store.tables import Run
from tests.service.conftest import TOKEN, Server

REFUSED = min(REFUSED_RELEASES["litellm"])  # a compromised release, from the refusal list


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OBSERVATORY_API_TOKEN", TOKEN)
    monkeypatch.delenv("CI", raising=False)


def _trigger(server: Server, *extra: str) -> int:
    return _invoke(["trigger", "--server", server.url, "--scenario", "chat", *extra])


def test_trigger_prints_the_validation_and_report_urls(
    server: Server, token_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _trigger(server, "--build", "cand", "--tag", "v1.81.12", "--duration", "5m")
    out = capsys.readouterr().out
    assert code == 0
    assert "validation 1: runs 1, 2 queued" in out
    assert "report: http://observatory.test/runs/2/report" in out
    assert "status: http://observatory.test/api/v1/validations/1" in out
    with server.client() as client:
        run = client.get("/api/v1/runs/2").json()
        validation = client.get("/api/v1/validations/1").json()
    assert run["duration_s"] == 300.0
    assert validation["tag"] == "v1.81.12"
    assert validation["requester"]


def test_trigger_again_reports_the_queued_duplicate(
    server: Server, token_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _trigger(server, "--build", "cand", "--tag", "v1") == 0
    capsys.readouterr()
    assert _trigger(server, "--build", "cand", "--tag", "v1") == 0
    assert "validation 1: the same build, scenarios and tag are already queued" in (
        capsys.readouterr().out
    )


def test_bad_input_exits_2_with_the_servers_message(
    server: Server, token_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _trigger(server, "--build", f"litellm=={REFUSED}") == 2
    assert "compromised release" in capsys.readouterr().err
    assert _trigger(server, "--build", "cand", "--duration", "soon") == 2
    assert "duration" in capsys.readouterr().err
    assert _trigger(server, "--build", "cand", "--wait", "--timeout", "forever") == 2
    assert "--timeout" in capsys.readouterr().err


def test_a_missing_token_exits_2_and_the_token_never_appears(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OBSERVATORY_API_TOKEN", raising=False)
    assert _trigger(server, "--build", "cand") == 2
    assert "HTTP 401" in capsys.readouterr().err
    monkeypatch.setenv("MY_TOKEN", TOKEN + "-wrong")
    assert _trigger(server, "--build", "cand", "--token-env", "MY_TOKEN") == 2
    captured = capsys.readouterr()
    assert "invalid API token" in captured.err
    assert TOKEN not in captured.out + captured.err


def test_an_unreachable_server_exits_4(token_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    code = _invoke(["trigger", "--server", "http://127.0.0.1:9", "--build", "x", "--scenario", "s"])
    assert code == 4
    assert "cannot reach http://127.0.0.1:9" in capsys.readouterr().err


def _finish_later(sessions: sessionmaker[Session], verdict: str, delay: float) -> threading.Thread:
    """Plays the worker: after ``delay`` the runs end with ``verdict``."""

    def finish() -> None:
        time.sleep(delay)
        with transaction(sessions) as session:
            for run in session.query(Run):
                run.status = "done"
                run.verdict = "pass" if run.role == "baseline" else verdict
                run.end_reason = f"{verdict} for the test"

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


@pytest.mark.parametrize(("verdict", "code"), [("regression", 1), ("pass", 0), ("inconclusive", 3)])
def test_wait_exits_by_the_verdict(
    server: Server,
    sessions: sessionmaker[Session],
    token_env: None,
    capsys: pytest.CaptureFixture[str],
    verdict: str,
    code: int,
) -> None:
    finisher = _finish_later(sessions, verdict, 1.5)
    result = _trigger(server, "--build", "cand", "--wait", "--poll", "0.3s", "--timeout", "1m")
    finisher.join()
    out = capsys.readouterr().out
    assert result == code
    assert "validation 1: queued" in out, "a status line while waiting"
    assert f"run 2 chat: done, {verdict} ({verdict} for the test)" in out
    assert "report: http://observatory.test/runs/2/report" in out
    assert f"validation 1: {verdict} (exit {code})" in out


def test_wait_times_out_with_exit_4(
    server: Server, token_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    result = _trigger(server, "--build", "cand", "--wait", "--poll", "0.2s", "--timeout", "1s")
    assert result == 4
    assert "timed out after 1s: validation 1 is not finished" in capsys.readouterr().err
