"""Cached pip venvs: real pip, real PyPI packages (tiny pure-Python ones), real locks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from observatory.builds.spec import REFUSED_RELEASES, PipSpec, parse_pip_spec
from observatory.builds.venv import (
    LAST_USED,
    MARKER,
    ensure_venv,
    hold_venv,
    list_venvs,
    prune,
    venv_info,
    venvs_root,
    verify_installed,
)
from observatory.errors import BuildError, InputError

SIX = "six==1.17.0"
DATEUTIL = "python-dateutil==2.9.0.post0"  # depends on six

REFUSED = min(REFUSED_RELEASES["litellm"])  # a compromised release, from the refusal list


def _store(cache: Path) -> list[str]:
    store = venvs_root(cache) / ".store"
    return sorted(p.name for p in store.iterdir()) if store.is_dir() else []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("litellm[proxy]>=1.81", r"one exact version.*ranges are refused"),
        ("litellm[proxy]==1.81.*", r"one exact version"),
        ("litellm==1.81.9,<2", r"one exact version"),
        ("litellm", r"one exact version"),
        ("litellm[proxy]==", r"bad pip spec"),
        ("lite llm==1.0", r"bad pip spec"),
        ("litellm @ https://example.invalid/x.whl", r"URLs and markers are not accepted"),
        ("litellm==1.81.9; python_version>'3'", r"URLs and markers are not accepted"),
        (f"litellm[proxy]=={REFUSED}", r"compromised release"),
        (f"LiteLLM=={REFUSED}", rf"litellm=={re.escape(REFUSED)} is a compromised release"),
        ("litellm==1.107", r"litellm==1.107 is a compromised release"),
    ],
)
def test_bad_and_forbidden_specs_are_refused(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_pip_spec(text)


@pytest.mark.parametrize("version", sorted(REFUSED_RELEASES["litellm"]))
def test_forbidden_version_is_refused_before_anything_is_installed(
    tmp_path: Path, version: str
) -> None:
    # Built by hand: ensure_venv must refuse even a spec that skipped parse_pip_spec.
    spec = PipSpec("litellm", ("proxy",), version)
    with pytest.raises(InputError, match=rf"litellm=={version} is a compromised release"):
        ensure_venv(spec, tmp_path)
    assert not venvs_root(tmp_path).exists()


def test_forbidden_package_in_the_resolved_set_is_refused_before_install(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    with pytest.raises(InputError, match=r"resolved install set of .* includes six==1.17.0"):
        ensure_venv(
            parse_pip_spec(DATEUTIL), tmp_path, progress=lines.append,
            extra_forbidden={"six": frozenset({"1.17.0"})},
        )  # fmt: skip
    assert not any(line.startswith("install ") for line in lines), lines
    assert _store(tmp_path) == []
    assert list_venvs(tmp_path) == []


@pytest.fixture(scope="module")
def six_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """One real venv with six, built once for the tests that only read it."""
    cache = tmp_path_factory.mktemp("cache")
    lines: list[str] = []
    return cache, ensure_venv(parse_pip_spec(SIX), cache, progress=lines.append), lines


def test_venv_is_built_once_then_reused(six_venv: tuple[Path, Path, list[str]]) -> None:
    cache, path, lines = six_venv
    assert path.parent == venvs_root(cache)
    assert path.is_symlink()
    info = venv_info(path)
    assert info.version_of("six") == "1.17.0"
    assert info.spec == SIX
    out = subprocess.run(
        [path / "bin" / "python", "-c", "import six; print(six.__version__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert out.stdout.strip() == "1.17.0"
    assert any("resolve six==1.17.0" in line for line in lines)
    marker = (path / MARKER).stat().st_mtime_ns

    again: list[str] = []
    assert ensure_venv(parse_pip_spec(SIX), cache, progress=again.append) == path
    assert again == []  # no pip run at all
    assert (path / MARKER).stat().st_mtime_ns == marker
    assert len(_store(cache)) == 1


def test_marker_records_what_was_installed(six_venv: tuple[Path, Path, list[str]]) -> None:
    data = json.loads((six_venv[1] / MARKER).read_text())
    assert data["installed"]["six"] == "1.17.0"
    assert data["python"].startswith(f"{sys.version_info.major}.{sys.version_info.minor}")


def test_installed_versions_are_checked_against_forbidden(
    six_venv: tuple[Path, Path, list[str]],
) -> None:
    path, spec = six_venv[1], parse_pip_spec(SIX)
    assert verify_installed(path, spec)["six"] == "1.17.0"
    with pytest.raises(InputError, match=r"installed packages of six==1.17.0 includes"):
        verify_installed(path, spec, extra_forbidden={"six": frozenset({"1.17.0"})})
    with pytest.raises(BuildError, match=r"installed six version is '1.17.0', expected 1.16.0"):
        verify_installed(path, PipSpec("six", (), "1.16.0"))


def test_failed_install_leaves_no_half_venv(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"resolve six==0.0.1 failed \(exit 1\)"):
        ensure_venv(parse_pip_spec("six==0.0.1"), tmp_path)
    assert _store(tmp_path) == []
    assert list_venvs(tmp_path) == []


def test_two_processes_provision_the_same_spec_safely(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path;"
        "from observatory.builds.spec import parse_pip_spec;"
        "from observatory.builds.venv import ensure_venv;"
        f"p = ensure_venv(parse_pip_spec({SIX!r}), Path(sys.argv[1]), progress=print);"
        "print('RESULT', p)"
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [proc.communicate(timeout=300)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], outputs
    results = {line for out in outputs for line in out.splitlines() if line.startswith("RESULT")}
    assert len(results) == 1, outputs
    assert sum("resolve six" in out for out in outputs) == 1, outputs  # exactly one built
    assert len(_store(tmp_path)) == 1
    assert venv_info(Path(results.pop().split()[1])).version_of("six") == "1.17.0"


def test_prune_removes_unused_venvs_and_reports_their_size(tmp_path: Path) -> None:
    old = ensure_venv(parse_pip_spec(SIX), tmp_path)
    new = ensure_venv(parse_pip_spec(DATEUTIL), tmp_path)
    month_ago = time.time() - 30 * 86400
    os.utime(old / LAST_USED, (month_ago, month_ago))
    leftover = venvs_root(tmp_path) / ".store" / f"{old.name}-deadbeef"
    leftover.mkdir()  # an interrupted build of an earlier process

    planned = prune(tmp_path, older_than=14 * 86400, dry_run=True)
    assert [v.key for v in planned] == [old.name]
    assert planned[0].size_bytes > 100_000
    assert old.exists()
    assert leftover.exists()

    assert prune(tmp_path, older_than=14 * 86400, keep={old.name}) == []
    removed = prune(tmp_path, older_than=14 * 86400)
    assert [v.key for v in removed] == [old.name]
    assert not old.exists()
    assert not leftover.exists()
    assert [v.key for v in list_venvs(tmp_path)] == [new.name]
    assert len(_store(tmp_path)) == 1


def test_prune_skips_a_venv_in_use(tmp_path: Path) -> None:
    path = ensure_venv(parse_pip_spec(SIX), tmp_path)
    with hold_venv(path):
        assert prune(tmp_path, older_than=0) == []
        assert path.exists()
        # A second run of the same build reuses the venv while the first still holds it.
        reused: list[Path] = []
        worker = threading.Thread(
            target=lambda: reused.append(ensure_venv(parse_pip_spec(SIX), tmp_path)),
            daemon=True,
        )
        worker.start()
        worker.join(timeout=30)
        assert reused == [path]
    assert [v.key for v in prune(tmp_path, older_than=0)] == [path.name]
