"""The CLI through a real subprocess, exit codes included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def observatory(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "observatory", *args],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_help_lists_commands_and_exit_codes(tmp_path: Path) -> None:
    result = observatory("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("db", "config", "builds", "runs"):
        assert f"  {command} " in result.stdout
    assert "2 bad input" in result.stdout


def test_unknown_command_is_bad_input(tmp_path: Path) -> None:
    result = observatory("frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr


def test_example_config_is_accepted(tmp_path: Path) -> None:
    result = observatory(
        "config", "check", str(ROOT / "docs" / "observatory.example.yaml"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "build litellm-1.81.9: litellm 1.81.9 [stable]" in result.stdout
    assert result.stdout.strip().endswith("ok")


def test_broken_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("service:\n  load_slots: lots\n")
    result = observatory("--config", str(bad), "runs", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}: invalid configuration" in result.stderr
    assert "service.load_slots" in result.stderr
    assert "'lots'" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing written


def test_db_upgrade_then_lists_on_sqlite(tmp_path: Path) -> None:
    config = tmp_path / "observatory.yaml"
    config.write_text(
        "builds:\n  edge: {gateway: litellm, url: 'http://127.0.0.1:4000', version: '2.0'}\n"
    )
    upgraded = observatory("db", "upgrade", cwd=tmp_path)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "at revision" in upgraded.stdout
    assert (tmp_path / "data" / "observatory.db").is_file()
    builds = observatory("builds", "list", cwd=tmp_path)
    assert builds.returncode == 0, builds.stderr
    assert "edge" in builds.stdout
    runs = observatory("runs", "list", cwd=tmp_path)
    assert runs.returncode == 0
    assert "SCENARIO" in runs.stdout
    down = observatory("db", "downgrade", "base", cwd=tmp_path)
    assert down.returncode == 0
    assert "at revision None" in down.stdout


@pytest.mark.postgres
def test_db_upgrade_on_postgres_hides_the_password(tmp_path: Path, pg_database: str) -> None:
    url = pg_database.replace("postgres@", "postgres:s3cr3t@")  # trust auth ignores it
    env = {"OBSERVATORY_DATABASE_URL": url}
    result = observatory("db", "upgrade", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "s3cr3t" not in result.stdout + result.stderr
    assert "***" in result.stdout
    assert observatory("db", "downgrade", "base", cwd=tmp_path, env=env).returncode == 0


def test_store_failure_is_internal_error(tmp_path: Path) -> None:
    env = {"OBSERVATORY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    result = observatory("runs", "list", cwd=tmp_path, env=env)
    assert result.returncode == 4
    assert result.stderr.startswith("error: database error: OperationalError")


def test_demo_refuses_an_unknown_fault_build_before_running_anything(tmp_path: Path) -> None:
    env = {"OBSERVATORY_DATA_DIR": str(tmp_path / "data")}
    result = observatory("demo", "--fault-build", "nope", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "--fault-build: unknown build 'nope'" in result.stderr
    assert "litellm-stable-faulty" in result.stderr  # the accepted names
    assert not (tmp_path / "data").exists()
