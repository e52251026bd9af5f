from __future__ import annotations

from pathlib import Path

import pytest

from observatory.builds.spec import REFUSED_RELEASES
from observatory.errors import ConfigError
from observatory.settings import is_allowed_target, load_settings

GOOD = """
scenarios_dir: {scenarios}
builds:
  stable: {{gateway: litellm, pip: "litellm[proxy]==1.81.9", channel: stable}}
scenarios:
  chat:
    file: chat.py
    profile: {{model: closed, users: 5}}
    duration: 1h30m
    warmup: 90s
schedules:
  nightly: {{cron: "0 1 * * *", build: stable, scenarios: [chat]}}
"""

REFUSED = min(REFUSED_RELEASES["litellm"])  # a compromised release, from the refusal list


@pytest.fixture
def scenarios(tmp_path: Path) -> Path:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    (directory / "chat.py").write_text("# a scenario\n")
    return directory


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "observatory.yaml"
    path.write_text(text)
    return path


def test_good_config_parses_durations_and_defaults(tmp_path: Path, scenarios: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD.format(scenarios=scenarios)), environ={})
    chat = settings.scenario("chat")
    assert chat.duration == 5400.0
    assert chat.warmup == 90.0
    assert settings.db_url == f"sqlite:///{tmp_path / 'data' / 'observatory.db'}"
    assert settings.build("stable").resolved_version == "1.81.9"


def test_environment_overrides_nested_keys_and_hides_secrets(
    tmp_path: Path, scenarios: Path
) -> None:
    env = {
        "OBSERVATORY_SLACK__WEBHOOK_URL": "https://hooks.example/T000/SECRET",
        "OBSERVATORY_DATABASE_URL": "postgresql://u:pw@127.0.0.1/db",
        "OBSERVATORY_SERVICE__LOAD_SLOTS": "2",
    }
    settings = load_settings(write(tmp_path, GOOD.format(scenarios=scenarios)), environ=env)
    assert settings.service.load_slots == 2
    assert settings.db_url == "postgresql+psycopg://u:pw@127.0.0.1/db"
    assert "SECRET" not in repr(settings)
    assert "pw" not in repr(settings.database_url)


BAD_CASES = [
    ("unknown key", "colour: blue\n", "colour: unknown key"),
    ("bad yaml", "scenarios: [unclosed\n", "not valid YAML at line 3"),
    (
        "bad duration",
        "scenarios:\n  s: {file: chat.py, profile: {users: 1}, duration: 5 parsecs}\n",
        "scenarios.s.duration: bad duration '5 parsecs'",
    ),
    (
        "negative users",
        "scenarios:\n  s: {file: chat.py, profile: {model: closed, users: -3}}\n",
        "scenarios.s.profile.closed.users: Input should be greater than or equal to 1 (got -3)",
    ),
    (
        "unknown profile model",
        "scenarios:\n  s: {file: chat.py, profile: {model: sideways, users: 3}}\n",
        "scenarios.s.profile: model must be 'closed' or 'open' (got {'model': 'sideways'",
    ),
    (
        "missing scenario file",
        "scenarios:\n  s: {file: nope.py, profile: {users: 1}}\n",
        "scenarios.s.file: 'nope.py' not found",
    ),
    (
        "unknown scenario reference",
        "builds:\n  b: {gateway: litellm, url: 'http://127.0.0.1:1'}\n"
        "schedules:\n  n: {interval: 1h, build: b, scenarios: [ghost]}\n",
        "schedules.n.scenarios: unknown scenario 'ghost'; known: ",
    ),
    (
        "unknown build reference",
        "scenarios:\n  s: {file: chat.py, profile: {users: 1}}\n"
        "schedules:\n  n: {interval: 1h, build: ghost, scenarios: [s]}\n",
        "schedules.n.build: unknown build 'ghost'; known: newest-candidate",
    ),
    (
        "bad database url",
        "database_url: mysql://root:hunter2@127.0.0.1/db\n",
        "database_url: accepted: sqlite:///PATH or postgresql://",
    ),
    (
        "version range",
        "builds:\n  b: {gateway: litellm, pip: 'litellm[proxy]>=1.81'}\n",
        "builds.b.pip: bad pip spec 'litellm[proxy]>=1.81': a build needs one exact version",
    ),
    (
        "compromised release",
        f"builds:\n  b: {{gateway: litellm, pip: 'litellm[proxy]=={REFUSED}'}}\n",
        f"litellm=={REFUSED} is a compromised release",
    ),
    (
        "unknown placeholder",
        "builds:\n  b: {gateway: litellm, command: 'run --port {port} --dir {home}'}\n",
        "builds.b.command: unknown placeholder(s) home; accepted: {host}, {port}, {config}",
    ),
    (
        "unknown gateway",
        "builds:\n  b: {gateway: nginx, url: 'http://127.0.0.1:1'}\n",
        "builds.b.gateway: unknown gateway 'nginx'; known: litellm",
    ),
    (
        "warmup longer than run",
        "scenarios:\n  s: {file: chat.py, profile: {users: 1}, duration: 1m, warmup: 2m}\n",
        "warmup (120s) must be shorter than duration (60s)",
    ),
    (
        "unknown threshold metric",
        "thresholds:\n  metrics: {latency_p42: {relative: 0.1}}\n",
        "thresholds.metrics: unknown metric(s) latency_p42; known: latency_p50",
    ),
    (
        "negative threshold",
        "thresholds:\n  metrics: {latency_p99: {relative: -0.1}}\n",
        "thresholds.metrics.latency_p99.relative: Input should be greater than or equal to 0",
    ),
    (
        "token without channel",
        "slack: {token: xoxb-secret-token}\n",
        "slack: a bot token needs a channel",
    ),
    (
        "bad cron",
        "builds:\n  b: {gateway: litellm, url: 'http://127.0.0.1:1'}\n"
        "schedules:\n  n: {cron: '* *', build: b, scenarios: [s]}\n",
        "schedules.n.cron: needs 5 fields, got 2; accepted: 5 fields in UTC",
    ),
    (
        "error code not allowed",
        "upstream: {faults: {error_codes: [418]}}\n",
        "upstream.faults.error_codes.0: Input should be 429, 500 or 503 (got 418)",
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_config_names_file_field_and_value(
    tmp_path: Path, scenarios: Path, case: str, text: str, expected: str
) -> None:
    path = write(tmp_path, f"scenarios_dir: {scenarios}\n{text}")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert message.startswith(str(path)), message
    assert expected in message, message
    assert "hunter2" not in message
    assert "xoxb-secret-token" not in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="top level must be a mapping, got list"):
        load_settings(write(tmp_path, "- a\n- b\n"), environ={})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.yaml", environ={})


@pytest.mark.parametrize(
    ("host", "allowed", "ok"),
    [
        ("127.0.0.1", [], True),
        ("127.9.9.9", [], True),
        ("::1", [], True),
        ("[::1]", [], True),
        ("localhost", [], True),
        ("10.0.0.5", [], False),
        ("10.0.0.5", ["10.0.0.0/24"], True),
        ("gateway.internal", ["gateway.internal"], True),
        ("evil.example", ["gateway.internal"], False),
    ],
)
def test_allowed_targets(host: str, allowed: list[str], ok: bool) -> None:
    assert is_allowed_target(host, allowed) is ok
