"""Isolated, cached virtual environments for pip builds.

Layout under ``<cache_dir>/venvs``::

    <key>                  symlink, the published name of a complete venv
    .store/<key>-<nonce>/  the venv itself (its scripts' shebangs name this path)
    .locks/<key>.lock      fcntl lock: exclusive while building or pruning, shared while in use

A venv is built in a fresh ``.store`` directory and published by atomically replacing the
``<key>`` symlink. Renaming the venv directory itself would break the absolute shebangs pip
writes into ``bin/`` (``bin/litellm`` would point at the temporary path), so the directory
never moves; publishing is the symlink swap. ``.observatory-venv.json`` inside the venv is
written last and records what was installed; ``.last-used`` is touched on every use.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from packaging.utils import canonicalize_name
from packaging.version import Version

from observatory.builds.spec import REFUSED_RELEASES, PipSpec, check_not_forbidden, is_forbidden
from observatory.errors import BuildError, InputError

log = logging.getLogger(__name__)

MARKER = ".observatory-venv.json"
LAST_USED = ".last-used"
PROGRESS_EVERY = 5.0  # seconds between "still installing" status lines
INSTALL_TIMEOUT = 1800.0  # a stuck index must not hang a scheduled run forever
LOG_TAIL_LINES = 30

Progress = Callable[[str], None]
Forbidden = Mapping[str, frozenset[str]]

# Read by the venv's own interpreter: every installed distribution and its version.
_LIST_INSTALLED = (
    "import importlib.metadata as m, json, sys;"
    "json.dump({d.metadata['Name']: d.version for d in m.distributions()}, sys.stdout)"
)


@dataclass(frozen=True, slots=True)
class VenvInfo:
    """What a complete venv holds, read from its marker file."""

    path: Path
    key: str
    spec: str
    python: str
    installed: dict[str, str]
    created: str

    def version_of(self, package: str) -> str | None:
        wanted = _canonical(package)
        for name, version in self.installed.items():
            if _canonical(name) == wanted:
                return version
        return None


@dataclass(frozen=True, slots=True)
class CachedVenv:
    """One published venv in the cache, as prune sees it."""

    key: str
    path: Path
    size_bytes: int
    last_used: datetime


def venv_key(spec: PipSpec) -> str:
    """A readable, filesystem-safe key; the hash also covers the interpreter it runs on."""
    extras = "-".join(spec.extras)
    readable = "-".join(p for p in (spec.package, extras, spec.version) if p)
    interpreter = f"{sys.implementation.cache_tag}|{sys.base_prefix}"
    digest = hashlib.sha256(f"{spec}|{interpreter}".encode()).hexdigest()[:10]
    return f"{readable}-{sys.implementation.cache_tag}-{digest}"


def venvs_root(cache_dir: Path) -> Path:
    return cache_dir.expanduser() / "venvs"


def ensure_venv(
    spec: PipSpec,
    cache_dir: Path,
    *,
    progress: Progress | None = None,
    extra_forbidden: Forbidden | None = None,
) -> Path:
    """Return the path of a complete venv with ``spec`` installed, building it once.

    Safe when several processes ask for the same spec at once (one builds, the others wait
    on the key's lock and then reuse it). Refuses compromised releases (``spec.REFUSED_RELEASES``
    plus ``extra_forbidden``) in the requested spec, in the resolved install set (before
    installing) and in what ended up installed.
    """
    forbidden = _merge(REFUSED_RELEASES, extra_forbidden or {})
    check_not_forbidden(spec.package, spec.version)
    _check_against(forbidden, {spec.package: spec.version}, f"requested spec {spec}")
    say = progress or log.info
    root = venvs_root(cache_dir)
    key = venv_key(spec)
    published = root / key
    # A shared lock suffices to reuse a complete venv, so a running gateway (which holds a
    # shared lock for hours) never blocks another run of the same build.
    with _key_lock(root, key, fcntl.LOCK_SH, say, f"a prune of {spec}"):
        if _is_complete(published):
            touch_last_used(published)
            return published
    with _key_lock(root, key, fcntl.LOCK_EX, say, f"another provisioning of {spec}"):
        if _is_complete(published):
            touch_last_used(published)
            return published
        _discard_stale(root, key)
        return _build(spec, root, key, say, forbidden)


def venv_info(path: Path) -> VenvInfo:
    """Read the marker of a complete venv; BuildError when it is missing or unreadable."""
    try:
        data = json.loads((path / MARKER).read_text(encoding="utf-8"))
        return VenvInfo(
            path=path,
            key=str(data["key"]),
            spec=str(data["spec"]),
            python=str(data["python"]),
            installed={str(k): str(v) for k, v in data["installed"].items()},
            created=str(data["created"]),
        )
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise BuildError(f"{path} is not a complete observatory venv: {exc}") from exc


def verify_installed(
    path: Path, spec: PipSpec, *, extra_forbidden: Forbidden | None = None
) -> dict[str, str]:
    """Ask the venv's own interpreter what is installed now and refuse a compromised or
    wrong version (a cached venv could have been changed since it was built)."""
    installed = _installed(path / "bin" / "python")
    _check_installed(spec, installed, _merge(REFUSED_RELEASES, extra_forbidden or {}))
    return installed


def touch_last_used(path: Path) -> None:
    (path / LAST_USED).touch()


@contextmanager
def hold_venv(path: Path) -> Iterator[None]:
    """Keep ``prune`` away from the venv at ``path`` (a published key) while it is in use."""
    with _key_lock(path.parent, path.name, fcntl.LOCK_SH, log.info, "a prune in progress"):
        touch_last_used(path)
        yield


def list_venvs(cache_dir: Path) -> list[CachedVenv]:
    """Every published venv in the cache, oldest use first."""
    root = venvs_root(cache_dir)
    if not root.is_dir():
        return []
    found = [
        CachedVenv(link.name, link, _size(link.resolve()), _last_used(link))
        for link in root.iterdir()
        if not link.name.startswith(".") and _is_complete(link)
    ]
    return sorted(found, key=lambda v: v.last_used)


def prune(
    cache_dir: Path,
    *,
    keep: set[str] | None = None,
    older_than: float | None = None,
    dry_run: bool = False,
) -> list[CachedVenv]:
    """Remove venvs whose key is not in ``keep`` and not used for ``older_than`` seconds.

    A venv in use (held by ``hold_venv``) or being built is skipped. Unpublished leftovers
    of interrupted builds are removed too. Returns what was (or, with ``dry_run``, would be)
    removed.
    """
    keep = keep or set()
    cutoff = None if older_than is None else time.time() - older_than
    removed = []
    for venv in list_venvs(cache_dir):
        if venv.key in keep or (cutoff is not None and venv.last_used.timestamp() > cutoff):
            continue
        if dry_run or _remove(venvs_root(cache_dir), venv.key):
            removed.append(venv)
    if not dry_run:
        _remove_orphans(venvs_root(cache_dir))
    return removed


def _build(spec: PipSpec, root: Path, key: str, say: Progress, forbidden: Forbidden) -> Path:
    target = root / ".store" / f"{key}-{uuid.uuid4().hex[:8]}"
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        _run(
            [sys.executable, "-m", "venv", str(target)], f"create venv for {spec}", say, log_to=None
        )
        python = target / "bin" / "python"
        pip_log = target / "pip.log"
        planned = _resolve(python, spec, say, pip_log)
        _check_against(forbidden, planned, f"resolved install set of {spec}")
        _run(_pip(python, "install", str(spec)), f"install {spec}", say, log_to=pip_log)
        installed = _installed(python)
        _check_installed(spec, installed, forbidden)
        _write_marker(target, key, spec, installed)
        _publish(root, key, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    say(f"installed {spec} into {root / key}")
    return root / key


def _pip(python: Path, *args: str) -> list[str]:
    return [str(python), "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]


def _resolve(python: Path, spec: PipSpec, say: Progress, pip_log: Path) -> dict[str, str]:
    """Ask pip what it would install (``--dry-run --report``) without installing anything."""
    argv = _pip(python, "install", "--dry-run", "--quiet", "--report", "-", str(spec))
    out = _run(argv, f"resolve {spec}", say, log_to=pip_log, capture=True)
    try:
        report = json.loads(out)
        return {
            str(item["metadata"]["name"]): str(item["metadata"]["version"])
            for item in report["install"]
        }
    except (ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"could not read pip's install report for {spec}: {exc}") from exc


def _installed(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-c", _LIST_INSTALLED], capture_output=True, text=True, timeout=120
    )
    if out.returncode != 0:
        raise BuildError(f"could not list the venv's packages: {out.stderr.strip()[-500:]}")
    data: dict[str, str] = json.loads(out.stdout)
    return data


def _check_installed(spec: PipSpec, installed: dict[str, str], forbidden: Forbidden) -> None:
    _check_against(forbidden, installed, f"installed packages of {spec}")
    got = {_canonical(k): v for k, v in installed.items()}.get(spec.package)
    if got is None or Version(got) != Version(spec.version):
        raise BuildError(f"installed {spec.package} version is {got!r}, expected {spec.version}")


def _check_against(forbidden: Forbidden, packages: Mapping[str, str], what: str) -> None:
    for name, version in packages.items():
        if is_forbidden(name, version, forbidden):
            bad = forbidden[_canonical(name)]
            raise InputError(
                f"{what} includes {_canonical(name)}=={version}, a compromised release that is "
                f"never installed; refused versions: {', '.join(sorted(bad))}"
            )


def _merge(*maps: Forbidden) -> dict[str, frozenset[str]]:
    merged: dict[str, frozenset[str]] = {}
    for mapping in maps:
        for name, versions in mapping.items():
            key = _canonical(name)
            merged[key] = merged.get(key, frozenset()) | frozenset(versions)
    return merged


def _run(
    argv: list[str], what: str, say: Progress, *, log_to: Path | None, capture: bool = False
) -> str:
    """Run a pip/venv step, printing an elapsed-time line every few seconds."""
    say(f"{what} ...")
    sink: IO[bytes] | int = open(log_to, "ab") if log_to else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if capture else sink,
            stderr=sink if log_to else subprocess.PIPE,
            env=_pip_env(),
        )
        out, err = _wait_with_progress(proc, what, say)
    finally:
        if not isinstance(sink, int):
            sink.close()
    if proc.returncode != 0:
        tail = _tail(log_to) if log_to else err.decode(errors="replace")[-2000:]
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return out.decode(errors="replace") if capture else ""


def _wait_with_progress(proc: subprocess.Popen[bytes], what: str, say: Progress) -> Any:
    start = time.monotonic()
    while True:
        try:
            return proc.communicate(timeout=PROGRESS_EVERY)
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - start
            if elapsed > INSTALL_TIMEOUT:
                proc.kill()
                proc.communicate()
                raise BuildError(f"{what} timed out after {elapsed:.0f}s") from None
            say(f"{what}: {elapsed:.0f}s elapsed")


def _pip_env() -> dict[str, str]:
    """The caller's environment minus what would leak secrets or bend the venv's Python."""
    drop = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV")
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith("OBSERVATORY_") and k != "DATABASE_URL"
    }


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


def _write_marker(target: Path, key: str, spec: PipSpec, installed: dict[str, str]) -> None:
    python = subprocess.run(
        [str(target / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    data = {
        "key": key,
        "spec": str(spec),
        "python": python,
        "installed": installed,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    touch_last_used(target)
    tmp = target / f"{MARKER}.tmp"
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target / MARKER)


def _publish(root: Path, key: str, target: Path) -> None:
    link_tmp = root / f".{key}.{uuid.uuid4().hex[:8]}.link"
    os.symlink(Path(".store") / target.name, link_tmp)
    os.replace(link_tmp, root / key)


def _is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def _discard_stale(root: Path, key: str) -> None:
    """Under the key's exclusive lock, any unpublished build of this key is a leftover."""
    published = root / key
    current = published.resolve() if published.is_symlink() else None
    if published.is_symlink() and not _is_complete(published):
        published.unlink()
    for path in (root / ".store").glob(f"{key}-*"):
        if path != current:
            shutil.rmtree(path, ignore_errors=True)


def _remove(root: Path, key: str) -> bool:
    try:
        with _try_lock(root, key) as locked:
            if not locked:
                log.info("venv %s is in use; not pruned", key)
                return False
            target = (root / key).resolve()
            (root / key).unlink()
            shutil.rmtree(target, ignore_errors=True)
            return True
    except OSError as exc:
        raise BuildError(f"could not remove venv {key}: {exc}") from exc


def _remove_orphans(root: Path) -> None:
    """Remove store directories no symlink points at and whose key is not being built."""
    for link in root.glob(".*.link"):  # a publish interrupted between symlink and rename
        link.unlink(missing_ok=True)
    store = root / ".store"
    if not store.is_dir():
        return
    for path in store.iterdir():
        key = path.name.rsplit("-", 1)[0]
        if path.resolve() in _live_targets(root):
            continue
        with _try_lock(root, key) as locked:
            if locked and path.resolve() not in _live_targets(root):
                shutil.rmtree(path, ignore_errors=True)


def _live_targets(root: Path) -> set[Path]:
    return {link.resolve() for link in root.iterdir() if link.is_symlink()}


def _lock_file(root: Path, key: str) -> Path:
    # Lock files are never deleted: removing one while another process waits on it would
    # let two processes each hold "the" lock on different inodes.
    lock_dir = root / ".locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    return lock_dir / f"{key}.lock"


@contextmanager
def _key_lock(root: Path, key: str, mode: int, say: Progress, waiting_for: str) -> Iterator[None]:
    with open(_lock_file(root, key), "a+b") as handle:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for {waiting_for} (lock {key})")
            fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _try_lock(root: Path, key: str) -> Iterator[bool]:
    with open(_lock_file(root, key), "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _last_used(path: Path) -> datetime:
    stamp = path / LAST_USED
    mtime = stamp.stat().st_mtime if stamp.exists() else (path / MARKER).stat().st_mtime
    return datetime.fromtimestamp(mtime, UTC)


def _size(path: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total


def _canonical(name: str) -> str:
    return str(canonicalize_name(name))
