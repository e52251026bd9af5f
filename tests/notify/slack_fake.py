"""A real HTTP server on loopback standing in for Slack, and outbox helpers.

The server speaks both dialects the adapter uses: an incoming webhook (POST JSON to the
hook URL, answer 200 "ok") and the Web API's chat.postMessage (Bearer token, JSON answer
with ``ts``). Answers are scripted per alert (the alert is recognised by "run #N" in the
message text), so a test says "run 3 gets a 500, then a 429, then succeeds" whatever the
order of delivery. Everything it received is recorded with whether the answer was an
acknowledgement that reached the client in time.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import Finding, FindingVerdict, Verdict
from observatory.notify.alert import AlertKind
from observatory.notify.payload import AlertContext, build_alert, report_url
from observatory.settings import Settings, SlackSettings
from observatory.store import alerts
from observatory.store.db import transaction
from observatory.store.tables import AlertRow, Build, Run

WEBHOOK_PATH = "/services/T0SECRET1/B0SECRET2/hooksecretXyZ123"
BOT_TOKEN = "xoxb-1111-2222-tokensecretAbC"
CHANNEL = "#releases"
RUN_KEY = re.compile(r"run #(\d+)")


@dataclass(frozen=True)
class Answer:
    """One scripted answer: a status (+headers/body), optionally after a delay."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: the success body of the endpoint
    delay: float = 0.0
    late: bool = False  # the delay is past the client's timeout: not an acknowledgement


OK = Answer()


def http(status: int, body: Any = "error", **headers: str) -> Answer:
    return Answer(status=status, headers=headers, body=body)


def slow(delay: float) -> Answer:
    return Answer(delay=delay, late=True)


def api_error(code: str, status: int = 200) -> Answer:
    return Answer(status=status, body={"ok": False, "error": code})


@dataclass
class Received:
    endpoint: str  # "webhook" | "api"
    run: int | None
    body: dict[str, Any]
    status: int
    acked: bool
    ts: str | None = None


class FakeSlack:
    def __init__(self) -> None:
        self.script: dict[int, list[Answer]] = {}
        self.default = OK
        self.delay = 0.0  # added to every answer (to keep requests in flight)
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._ts = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.webhook_url = self.base + WEBHOOK_PATH
        self.api_url = self.base + "/api/"

    def answer_for(self, run: int | None) -> Answer:
        with self._lock:
            queue = self.script.get(run) if run is not None else None
            return queue.pop(0) if queue else self.default

    def next_ts(self) -> str:
        with self._lock:
            self._ts += 1
            return f"1700000000.{self._ts:06d}"

    def record(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    def acked(self, run: int) -> int:
        return sum(1 for r in self.received if r.run == run and r.acked)

    def received_for(self, run: int) -> list[Received]:
        return [r for r in self.received if r.run == run]


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.loads(raw or b"{}")
            match = RUN_KEY.search(str(body.get("text", "")))
            run = int(match.group(1)) if match else None
            answer = fake.answer_for(run)
            if self.path == WEBHOOK_PATH:
                self._webhook(body, run, answer)
            elif self.path == "/api/chat.postMessage":
                self._api(body, run, answer)
            else:
                self._send(404, "no_service", {})

        def _webhook(self, body: dict[str, Any], run: int | None, answer: Answer) -> None:
            item = Received("webhook", run, body, answer.status, acked=False)
            fake.record(item)
            time.sleep(answer.delay + fake.delay)
            payload = "ok" if answer.body is None else answer.body
            # Decided before writing: the client may act on the answer before we return.
            item.acked = 200 <= answer.status < 300 and not answer.late
            self._send(answer.status, payload, answer.headers)

        def _api(self, body: dict[str, Any], run: int | None, answer: Answer) -> None:
            if self.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
                answer = api_error("invalid_auth")
            item = Received("api", run, body, answer.status, acked=False)
            fake.record(item)
            time.sleep(answer.delay + fake.delay)
            ts = fake.next_ts()
            payload = answer.body
            if payload is None:
                payload = {"ok": True, "channel": "C0RELEASES", "ts": ts}
            ok = isinstance(payload, dict) and payload.get("ok") is True
            item.acked = answer.status == 200 and ok and not answer.late
            item.ts = ts if item.acked else None
            self._send(answer.status, payload, answer.headers)

        def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
            is_json = isinstance(payload, dict)
            data = (json.dumps(payload) if is_json else str(payload)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if is_json else "text/plain")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout) or was killed

    return Handler


def slack_settings(fake: FakeSlack | None, mode: str = "webhook", **extra: Any) -> Settings:
    """Settings whose Slack points at ``fake`` (or is unconfigured when fake is None)."""
    options: dict[str, Any] = {
        "timeout": 1.0,
        "retry_initial": 2.0,
        "retry_max": 30.0,
        "give_up_after": 3600.0,
    }
    if fake is not None and mode == "webhook":
        options["webhook_url"] = fake.webhook_url
    elif fake is not None:
        options.update(token=BOT_TOKEN, channel=CHANNEL, api_url=fake.api_url)
    options.update(extra)
    return Settings(slack=SlackSettings(**options))


def make_build(sessions: sessionmaker[Session], name: str = "litellm-1.83.0") -> int:
    with transaction(sessions) as session:
        build = Build(
            name=name,
            gateway="litellm",
            version=name.rsplit("-", 1)[-1],
            provision_kind="pip",
            provision=f"litellm=={name.rsplit('-', 1)[-1]}",
        )
        session.add(build)
        session.flush()
        return build.id


def make_run(session: Session, build_id: int, scenario: str = "chat-steady") -> Run:
    run = Run(
        build_id=build_id,
        scenario=scenario,
        profile={"model": "closed", "users": 10},
        duration_s=3600.0,
        warmup_s=60.0,
        window_s=10.0,
    )
    session.add(run)
    session.flush()
    return run


def context(
    run_id: int, build_id: int | None, kind: AlertKind = AlertKind.REGRESSION
) -> AlertContext:
    finding = Finding(
        metric="latency_p99",
        name="chat",
        verdict=FindingVerdict.REGRESSION,
        baseline=412.0,
        candidate=487.0,
        delta=0.182,
        ci_low=0.12,
        ci_high=0.25,
        p_value=0.001,
        threshold=0.1,
        unit="ms",
        at_s=3660.0,
    )
    return AlertContext(
        run_id=run_id,
        scenario="chat-steady",
        kind=kind,
        verdict=Verdict.REGRESSION,
        reason="p99 latency regressed beyond the 10 % threshold",
        build_name="litellm-1.83.0",
        build_version="1.83.0",
        report_url=report_url("http://127.0.0.1:8700", run_id),
        build_id=build_id,
        baseline_name="litellm-1.82.0",
        baseline_version="1.82.0",
        baseline_run_id=1,
        findings=(finding,),
        duration_s=3600.0,
        end_reason="completed",
    )


def enqueue_runs(
    sessions: sessionmaker[Session],
    build_id: int,
    count: int,
    *,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> list[int]:
    """``count`` runs, each with its verdict alert written in the same transaction."""
    slack = settings.slack if settings is not None else SlackSettings()
    run_ids = []
    for _ in range(count):
        with transaction(sessions) as session:
            run = make_run(session, build_id)
            run.verdict = Verdict.REGRESSION.value
            alerts.enqueue(session, build_alert(context(run.id, build_id), slack), now=now)
            run_ids.append(run.id)
    return run_ids


def rows(sessions: sessionmaker[Session]) -> list[AlertRow]:
    with transaction(sessions) as session:
        return list(session.query(AlertRow).order_by(AlertRow.id))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write_config(path: Path, db_url: str, slack: dict[str, Any]) -> Path:
    """An observatory.yaml for CLI subprocesses."""
    config = {"database_url": db_url, "data_dir": str(path / "data"), "slack": slack}
    file = path / "observatory.yaml"
    file.write_text(yaml.safe_dump(config))
    return file


def cli_env() -> dict[str, str]:
    """The environment without OBSERVATORY_* overrides of the developer's shell."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
