"""`observatory builds provision | prune` through a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from observatory.builds.spec import REFUSED_RELEASES
from observatory.builds.venv import LAST_USED, list_venvs

REFUSED = min(REFUSED_RELEASES["litellm"])  # a compromised release, from the refusal list


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "observatory.yaml"
    config.write_text(
        f"cache_dir: {tmp_path / 'cache'}\n"
        "builds:\n"
        "  tiny:\n    gateway: litellm\n    pip: six==1.17.0\n"
        "  local:\n    gateway: litellm\n    url: http://127.0.0.1:4000\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    return subprocess.run(
        [sys.executable, "-m", "observatory", "--config", str(config), "builds", *args],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip


def test_provision_prints_the_venv_path_and_prune_frees_it(tmp_path: Path) -> None:
    first = _cli(tmp_path, "provision", "tiny")
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip())
    assert (path / "bin" / "python").exists()
    assert "install six==1.17.0" in first.stderr

    other = _cli(tmp_path, "provision", "python-dateutil==2.9.0.post0")
    assert other.returncode == 0, other.stderr
    old = time.time() - 20 * 86400
    os.utime(Path(other.stdout.strip()) / LAST_USED, (old, old))

    dry = _cli(tmp_path, "prune", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would remove python-dateutil-2.9.0.post0-" in dry.stdout
    assert "1 venv(s) to remove; would free" in dry.stdout
    assert len(list_venvs(tmp_path / "cache")) == 2

    real = _cli(tmp_path, "prune", "--older-than", "0s")
    assert real.returncode == 0, real.stderr
    assert "1 venv(s) removed; freed" in real.stdout  # the configured build is kept
    assert [v.path for v in list_venvs(tmp_path / "cache")] == [path]


def test_provision_refuses_bad_input_with_exit_2(tmp_path: Path) -> None:
    cases = {
        "litellm[proxy]>=1.81": "ranges are refused",
        f"litellm[proxy]=={REFUSED}": "compromised release",
        "local": "'local' is not a pip build",
        "nope": "unknown build 'nope'; configured pip builds: tiny",
    }
    for arg, message in cases.items():
        result = _cli(tmp_path, "provision", arg)
        assert result.returncode == 2, (arg, result.stderr)
        assert message in result.stderr
    assert not (tmp_path / "cache" / "venvs").exists()
    assert _cli(tmp_path, "prune", "--older-than", "soon").returncode == 2
