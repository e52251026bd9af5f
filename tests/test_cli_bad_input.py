"""Bad input to the CLI: each case exits 2 with a message naming the option or field and
what is accepted, never a traceback, and writes nothing. In-process (``_invoke``, the
same code path as the ``observatory`` command) to stay fast; one real subprocess per kind
of failure that matters outside Python (exit status, no port opened)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from observatory.builds.spec import REFUSED_RELEASES
from observatory.cli import _invoke
from observatory.settings import MIN_TOKEN_CHARS
from observatory.store import db
from observatory.store.tables import AlertRow, Build, Run, Validation

BIG = "9" * 20
REFUSED = min(REFUSED_RELEASES["litellm"])
CONFIG = """\
data_dir: data
scenarios_dir: scenarios
builds:
  stable: {gateway: litellm, command: "/bin/false {port}", version: "1", channel: stable}
  cand: {gateway: litellm, command: "/bin/false {port}", version: "2"}
scenarios:
  chat: {file: chat.py, profile: {users: 1}, duration: 10s, warmup: 2s}
"""


@dataclass
class Workspace:
    root: Path

    @property
    def config(self) -> Path:
        return self.root / "observatory.yaml"

    @property
    def database(self) -> Path:
        return self.root / "data" / "observatory.db"

    def counts(self) -> tuple[int, ...]:
        engine = db.make_engine(f"sqlite:///{self.database}")
        try:
            with db.transaction(db.session_factory(engine)) as session:
                return tuple(
                    int(session.scalar(select(func.count()).select_from(model)) or 0)
                    for model in (Validation, Run, Build, AlertRow)
                )
        finally:
            engine.dispose()


def _workspace(root: Path, extra: str = "") -> Workspace:
    (root / "scenarios").mkdir(parents=True, exist_ok=True)
    (root / "scenarios" / "chat.py").write_text("# scenario\n")
    (root / "observatory.yaml").write_text(CONFIG + extra)
    return Workspace(root)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("OBSERVATORY_")]:
        monkeypatch.delenv(key)


@pytest.fixture(scope="module")
def ready(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A migrated database with the configured builds registered."""
    workspace = _workspace(tmp_path_factory.mktemp("cli-ready"))
    assert _invoke(["--config", str(workspace.config), "db", "upgrade"]) == 0
    assert _invoke(["--config", str(workspace.config), "builds", "list"]) == 0
    return workspace


def _run(capsys: pytest.CaptureFixture[str], workspace: Workspace, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = _invoke(["--config", str(workspace.config), *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# (argv, words in the message)
COMMAND_CASES: list[tuple[tuple[str, ...], str]] = [
    # run: baselines, builds, durations, free text
    (("run", "--build", "cand", "--scenario", "chat", "--baseline", "\u00b2"), "baseline:"),
    (("run", "--build", "cand", "--scenario", "chat", "--baseline", BIG), "or a run id"),
    (("run", "--build", "cand", "--scenario", "chat", "--baseline", "0"), "or a run id"),
    (("run", "--build", "cand", "--scenario", "chat", "--baseline", "-1"), "or a run id"),
    (("run", "--build", "cand", "--scenario", "chat", "--baseline", "x"), "auto, none, alongside"),
    (("run", "--build", "cand", "--scenario", "chat", "--baseline", "424242"), "unknown run"),
    (("run", "--build", "nope", "--scenario", "chat"), "give a configured build (cand, stable)"),
    (("run", "--build", "litellm[proxy,zzz]==1.81.16", "--scenario", "chat"), "extras"),
    (("run", "--build", f"litellm=={REFUSED}", "--scenario", "chat"), "compromised release"),
    (("run", "--build", "litellm>=1", "--scenario", "chat"), "exact version"),
    (("run", "--build", "litellm==1.*", "--scenario", "chat"), "ranges are refused"),
    (("run", "--build", "requests==2.31.0", "--scenario", "chat"), "accepted: litellm"),
    (("run", "--build", "cand", "--scenario", "nope"), "unknown scenario 'nope'; known: chat"),
    (("run", "--build", "cand", "--scenario", "chat", "--duration", "5 parsecs"), "--duration"),
    (("run", "--build", "cand", "--scenario", "chat", "--duration", "30d"), "outside 1s..7d"),
    (("run", "--build", "cand", "--scenario", "chat", "--duration", "0s"), "outside 1s..7d"),
    (("run", "--build", "cand", "--scenario", "chat", "--duration", "nan"), "--duration"),
    (("run", "--build", "cand", "--scenario", "chat", "--tag", "v1\x01"), "tag: character U+0001"),
    (("run", "--build", "cand", "--scenario", "chat", "--tag", "v1\u202e"), "accepted: printable"),
    (("run", "--build", "cand", "--scenario", "chat", "--tag", "v\u200b1"), "U+200B"),
    (("run", "--scenario", "chat"), "Missing option '--build'"),
    (("run", "--build", "cand"), "Missing option '--scenario'"),
    # ids past what a database stores, or not ids at all
    (("compare", BIG), "RUN_ID"),
    (("compare", "\u00b2"), "is not a valid integer"),
    (("compare", "0"), "1<=x<="),
    (("compare", "1", "--baseline", BIG), "--baseline"),
    (("compare", "424242"), "unknown run 424242"),
    (("runs", "show", BIG), "RUN_ID"),
    (("runs", "show", "abc"), "is not a valid integer"),
    (("runs", "show", "424242"), "unknown run 424242"),
    (("runs", "cancel", BIG), "RUN_ID"),
    (("runs", "cancel", "424242"), "unknown run 424242"),
    (("runs", "exclude", "\u00b2"), "is not a valid integer"),
    (("report", BIG), "RUN must be a run id"),
    (("report", "\u00b2"), "RUN must be a run id"),
    (("report", "0"), "RUN must be a run id"),
    (("report", "424242"), "unknown run 424242"),
    (("alerts", "retry", BIG), "ALERT_ID"),
    # filters and options
    (("runs", "list", "--status", "bogus"), "'queued', 'provisioning', 'running'"),
    (("runs", "list", "--status", ""), "is not one of"),
    (("runs", "list", "--limit", "0"), "1<=x<=10000"),
    (("runs", "list", "--limit", "many"), "is not a valid integer"),
    (("promote", "nope"), "unknown build 'nope'; known:"),
    (("builds", "provision", "litellm>=1"), "exact version"),
    (("builds", "provision", f"litellm=={REFUSED}"), "compromised release"),
    (("builds", "prune", "--older-than", "soon"), "bad duration 'soon'"),
    (("db", "downgrade", "bogus"), "accepted: head, base, or a revision id"),
    (("db", "upgrade", "bogus"), "accepted: head, base, or a revision id"),
    (("serve", "--port", "70000"), "0<=x<=65535"),
    # trigger: checked before any request is sent
    (("trigger", "--server", "notaurl", "--build", "b", "--scenario", "s"), "--server: not a URL"),
    (("trigger", "--server", "ftp://h", "--build", "b", "--scenario", "s"), "accepted: http://"),
    (("trigger", "--server", "http://", "--build", "b", "--scenario", "s"), "--server"),
    (
        ("trigger", "--server", "http://h", "--build", "b", "--scenario", "s", "--poll", "x"),
        "--poll",
    ),
    (
        ("trigger", "--server", "http://h", "--build", "b", "--scenario", "s", "--timeout", "-"),
        "--timeout",
    ),
]


@pytest.mark.parametrize(("argv", "words"), COMMAND_CASES)
def test_bad_command_line_exits_2_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], ready: Workspace, argv: tuple[str, ...], words: str
) -> None:
    before = ready.counts()
    code, output = _run(capsys, ready, *argv)
    assert code == 2, output
    assert words in output, output
    assert "Traceback" not in output
    assert ready.counts() == before


READ_COMMANDS = [
    ("builds", "list"),
    ("runs", "list"),
    ("runs", "show", "1"),
    ("runs", "cancel", "1"),
    ("compare", "1"),
    ("report", "1"),
    ("report", "index"),
    ("promote", "cand"),
    ("alerts", "list"),
]


@pytest.mark.parametrize("argv", READ_COMMANDS)
def test_a_fresh_data_dir_says_run_db_upgrade_and_stays_empty(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: tuple[str, ...]
) -> None:
    fresh = _workspace(tmp_path)
    code, output = _run(capsys, fresh, *argv)
    assert code == 2, output
    assert "database not initialised: run `observatory db upgrade`" in output
    assert not fresh.database.exists(), "no empty database file is left behind"


def test_db_current_on_a_fresh_data_dir_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fresh = _workspace(tmp_path)
    code, output = _run(capsys, fresh, "db", "current")
    assert (code, output.strip()) == (0, "empty (run `observatory db upgrade`)")
    assert not fresh.database.exists()


# (config added to the base, field named, accepted words)
CONFIG_CASES: list[tuple[str, str, str]] = [
    ("schedules:\n  n: {cron: '61 * * * *', build: cand, scenarios: [chat]}\n",
     "schedules.n.cron", "minute 0-59"),
    ("schedules:\n  n: {cron: '0 25 * * *', build: cand, scenarios: [chat]}\n",
     "schedules.n.cron", "hour 0-23"),
    ("schedules:\n  n: {cron: '* * * *', build: cand, scenarios: [chat]}\n",
     "schedules.n.cron", "needs 5 fields, got 4"),
    ("schedules:\n  n: {cron: '* * * * * *', build: cand, scenarios: [chat]}\n",
     "schedules.n.cron", "needs 5 fields, got 6"),
    ("schedules:\n  n: {cron: '0 3 * * funday', build: cand, scenarios: [chat]}\n",
     "schedules.n.cron", "weekday 0-6 or mon-sun"),
    ("schedules:\n  n: {cron: '*/0 * * * *', build: cand, scenarios: [chat]}\n",
     "schedules.n.cron", "accepted: 5 fields in UTC"),
    ("schedules:\n  n: {interval: 0, build: cand, scenarios: [chat]}\n",
     "schedules.n.interval", "must be at least 1s"),
    ("schedules:\n  n: {interval: 0s, build: cand, scenarios: [chat]}\n",
     "schedules.n.interval", "must be at least 1s"),
    ("schedules:\n  n: {interval: 500ms, build: cand, scenarios: [chat]}\n",
     "schedules.n.interval", "must be at least 1s"),
    ("schedules:\n  n: {interval: -5, build: cand, scenarios: [chat]}\n",
     "schedules.n.interval", "must not be negative"),
    ("schedules:\n  n: {interval: soon, build: cand, scenarios: [chat]}\n",
     "schedules.n.interval", "bad duration"),
    ("schedules:\n  n: {interval: 1h, cron: '0 * * * *', build: cand, scenarios: [chat]}\n",
     "schedules.n", "give exactly one of cron or interval"),
    ("schedules:\n  n: {interval: 1h, build: cand, scenarios: [chat], tag: \"v1\\0\"}\n",
     "schedules.n.tag", "U+0000"),
    ("schedules:\n  n: {interval: 1h, build: cand, scenarios: [chat], tag: \"v1\\u202e\"}\n",
     "schedules.n.tag", "accepted: printable"),
    ("database_url: postgresql://u@127.0.0.1:abc/db\n", "database_url", "port must be a number"),
    ("database_url: postgresql://u@127.0.0.1:99999/db\n", "database_url", "port must be"),
    ("database_url: mysql://u@h/db\n", "database_url", "accepted: sqlite:///PATH"),
    ("service: {api_token: ''}\n", "service.api_token", f"at least {MIN_TOKEN_CHARS} characters"),
    ("service: {api_token: '   '}\n", "service.api_token", "at least"),
    ("service: {api_token: short}\n", "service.api_token", "openssl rand -hex 24"),
    ("service: {port: 70000}\n", "service.port", "less than or equal to 65535"),
    ("service: {load_slots: 0}\n", "service.load_slots", "greater than or equal to 1"),
    ("service: {read_auth: maybe}\n", "service.read_auth", "valid boolean"),
    ("allowed_targets: ['not a host!']\n", "allowed_targets", "not a host name"),
    ("builds:\n  far: {gateway: litellm, url: 'ftp://10.0.0.1'}\n",
     "builds.far", "must start with http:// or https://"),
    ("builds:\n  far: {gateway: litellm, url: 'ftp://ops:S3CRET@10.0.0.1'}\n",
     "builds.far", "'ftp://<redacted>@10.0.0.1' must start with http://"),
    ("builds:\n  far: {gateway: litellm, url: 'http://ops:S3CRET@10.0.0.1'}\n",
     "builds.far.url", "host '10.0.0.1' is not an allowed target"),
    ("builds:\n  far: {gateway: litellm, url: 'http://10.1.2.3:4000'}\n",
     "builds.far.url", "host '10.1.2.3' is not an allowed target; accepted: loopback"),
    ("builds:\n  far: {gateway: litellm, url: 'https://gw.example.com'}\n"
     "allowed_targets: [10.0.0.0/8]\n",
     "builds.far.url", "accepted: loopback, 10.0.0.0/8"),
    ("builds:\n  bad: {gateway: litellm, pip: 'litellm[proxy]>=1'}\n", "builds.bad.pip", "exact"),
    (f"builds:\n  bad: {{gateway: litellm, pip: 'litellm=={REFUSED}'}}\n",
     "builds.bad.pip", "compromised release"),
    ("scenarios:\n  chat: {file: chat.py, profile: {users: 0}}\n",
     "scenarios.chat.profile", "greater than or equal to 1"),
    ("scenarios:\n  chat: {file: ghost.py, profile: {users: 1}}\n",
     "scenarios.chat.file", "not found"),
    ("thresholds: {fdr: 2}\n", "thresholds.fdr", "less than 1"),
    ("baseline: {policy: sometimes}\n", "baseline.policy", "'reuse', 'rerun' or 'alongside'"),
    ("slack: {token: xoxb-1234}\n", "slack", "a bot token needs a channel"),
    ("bogus_key: 1\n", "bogus_key", "unknown key"),
]  # fmt: skip


@pytest.mark.parametrize(("extra", "field", "words"), CONFIG_CASES)
def test_config_check_exits_2_naming_the_field_and_what_is_accepted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: str, field: str, words: str
) -> None:
    workspace = _workspace(tmp_path, extra)  # a repeated top-level key replaces the base's
    code, output = _run(capsys, workspace, "config", "check")
    assert code == 2, output
    assert field in output, output
    assert words in output, output
    assert "Traceback" not in output
    assert "S3CRET" not in output
    assert not (workspace.root / "data").exists()


def test_an_empty_token_from_the_environment_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = _workspace(tmp_path)
    monkeypatch.setenv("OBSERVATORY_SERVICE__API_TOKEN", "")
    code, output = _run(capsys, workspace, "config", "check")
    assert code == 2, output
    assert f"service.api_token: must be at least {MIN_TOKEN_CHARS} characters" in output


def test_config_check_never_prints_url_credentials(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    workspace = _workspace(tmp_path)
    workspace.config.write_text(
        CONFIG.replace(
            "builds:\n",
            "builds:\n  edge: {gateway: litellm, url: 'http://ops:S3CRET@127.0.0.1:4000'}\n",
        )
    )
    code, output = _run(capsys, workspace, "config", "check")
    assert code == 0, output
    assert "build edge: litellm unversioned [candidate] http://<redacted>@127.0.0.1:4000" in output
    assert "S3CRET" not in output
    assert "ops:" not in output


def test_serve_with_a_bad_schedule_exits_2_before_opening_its_port(tmp_path: Path) -> None:
    extra = "schedules:\n  n: {cron: '61 * * * *', build: cand, scenarios: [chat]}\n"
    workspace = _workspace(tmp_path, extra)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    result = subprocess.run(
        [sys.executable, "-m", "observatory", "--config", str(workspace.config),
         "serve", "--port", str(port)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "schedules.n.cron" in result.stderr
    assert "Traceback" not in result.stderr
    assert not workspace.database.exists()
