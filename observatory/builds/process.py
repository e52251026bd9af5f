"""Supervision of one gateway process tree: start, log capture, crash detection, teardown.

The child runs in its own session (so its process group is ours to signal), its stdout and
stderr go through a pump thread into a size-capped, rotated log, and a watcher thread
blocks on its exit so a crash is recorded the moment it happens, not at the next poll.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import logging.handlers
import os
import signal
import subprocess
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import psutil

from observatory.errors import BuildError

log = logging.getLogger(__name__)

LOG_MAX_BYTES = 10 * 1024 * 1024
LOG_BACKUPS = 3
TAIL_LINES = 200
MAX_LINE = 64 * 1024  # a line longer than this is split; a newline-free stream can't eat RAM
REDACTED = "<redacted>"

_live: weakref.WeakSet[SupervisedProcess] = weakref.WeakSet()


@dataclass(frozen=True, slots=True)
class CrashInfo:
    """How a process ended on its own: exit code or signal, when, and its last log lines."""

    exit_code: int | None
    signal: str | None
    at: datetime
    log_tail: str

    @property
    def how(self) -> str:
        return f"signal {self.signal}" if self.signal else f"exit code {self.exit_code}"

    def describe(self) -> str:
        return f"exited with {self.how} at {self.at.isoformat(timespec='seconds')}"


class SupervisedProcess:
    """One child process tree with a rotated log; ``stop()`` leaves nothing behind."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        secrets: Sequence[str] = (),
        max_bytes: int = LOG_MAX_BYTES,
        backups: int = LOG_BACKUPS,
        on_exit: Callable[[CrashInfo], None] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._env = dict(env)
        self._cwd = cwd
        self._secrets = [s for s in secrets if s]
        self._max_bytes = max_bytes
        self._backups = backups
        self._on_exit = on_exit
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._exited = threading.Event()
        self._exit: CrashInfo | None = None
        self._threads: list[threading.Thread] = []
        self.output_bytes = 0  # everything the tree wrote to stdout/stderr (counted, not kept)

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BuildError("process not started")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and not self._exited.is_set()

    def start(self) -> None:
        """Start the child in a new session; BuildError when it cannot be executed."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._proc = subprocess.Popen(
                self.argv,
                env=self._env,
                cwd=self._cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise BuildError(f"could not start {self.argv[0]!r}: {exc.strerror or exc}") from exc
        _live.add(self)
        assert self._proc.stdout is not None
        pump = threading.Thread(target=self._pump, args=(self._proc.stdout,), daemon=True)
        watcher = threading.Thread(target=self._watch, daemon=True)
        self._threads = [pump, watcher]
        pump.start()
        watcher.start()

    def exit_info(self) -> CrashInfo | None:
        """How the process ended if it ended by itself (not through ``stop()``), else None."""
        return self._exit

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the process to end; True when it has."""
        return self._exited.wait(timeout)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(list(self._tail)[-lines:])

    def tree(self) -> list[psutil.Process]:
        """The root process and all its descendants alive now."""
        if self._proc is None or self._exited.is_set():
            return []
        try:
            root = psutil.Process(self._proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def set_cpu_affinity(self, cpus: list[int]) -> None:
        """Pin the whole tree (children inherit it from then on)."""
        for proc in self.tree():
            try:
                proc.cpu_affinity(cpus)
            except psutil.NoSuchProcess:
                continue
            except (ValueError, psutil.Error) as exc:
                raise BuildError(
                    f"cpu_affinity {cpus} rejected: {exc}; this host has CPUs "
                    f"0..{(psutil.cpu_count() or 1) - 1}"
                ) from exc

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the group, wait ``grace`` s, then SIGKILL every process of the tree."""
        if self._proc is None or self._stopping.is_set():
            return
        self._stopping.set()
        # Descendants only: psutil would reap our own child and rob the watcher of its status.
        descendants = self.tree()[1:]
        self._signal_group(signal.SIGTERM)
        deadline = time.monotonic() + grace
        self._exited.wait(grace)
        alive = _wait_gone(descendants, timeout=max(0.0, deadline - time.monotonic()))
        if alive or not self._exited.is_set():
            log.warning("pid %s did not stop within %.0fs; killing its tree", self.pid, grace)
            self._proc.kill()
            _kill(alive + self.tree()[1:])
        self._signal_group(signal.SIGKILL)  # stragglers forked during teardown
        self._exited.wait(10)
        _wait_gone(descendants, timeout=5.0)
        for thread in self._threads:
            thread.join(timeout=10)
        _live.discard(self)

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def _pump(self, pipe: IO[bytes]) -> None:
        handler = logging.handlers.RotatingFileHandler(
            self.log_path, maxBytes=self._max_bytes, backupCount=self._backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        try:
            for raw in iter(lambda: pipe.readline(MAX_LINE), b""):
                self.output_bytes += len(raw)
                line = self._redact(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
                self._tail.append(line)
                handler.handle(logging.makeLogRecord({"msg": line, "args": None}))
        finally:
            handler.close()
            pipe.close()

    def _redact(self, line: str) -> str:
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        return line

    def _watch(self) -> None:
        assert self._proc is not None
        code = self._proc.wait()
        at = datetime.now(UTC)
        self._threads[0].join(timeout=5)  # the pump drains what the process wrote last
        if not self._stopping.is_set():
            self._exit = _crash_info(code, at, self.log_tail())
            log.warning("pid %s %s", self._proc.pid, self._exit.describe())
        self._exited.set()
        if self._exit is not None and self._on_exit is not None:
            self._on_exit(self._exit)


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each process is gone or a zombie (a zombie holds nothing but its pid,
    and only its parent, possibly init, can reap it); return those still running."""
    deadline = time.monotonic() + timeout
    running = list(procs)
    while running:
        running = [proc for proc in running if _running(proc)]
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return running


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _crash_info(returncode: int, at: datetime, tail: str) -> CrashInfo:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return CrashInfo(exit_code=None, signal=name, at=at, log_tail=tail)
    return CrashInfo(exit_code=returncode, signal=None, at=at, log_tail=tail)


@atexit.register
def _stop_all() -> None:
    """A normal interpreter exit never leaves a supervised process running."""
    for proc in list(_live):
        proc.stop(grace=5.0)
