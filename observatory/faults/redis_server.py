"""A private redis-server for one run, with the fault proxy in front of it.

Never the shared Redis on 6379: a run that needs Redis gets its own ``redis-server`` on a
free loopback port, persisting nothing (``--save "" --appendonly no``), stopped with the
run. The gateway is given the fault proxy's address, never the server's, so the
``redis_slow`` and ``redis_down`` phases sit on the path of every Redis call it makes.

A run needs Redis when its scenario has a ``redis_*`` phase or the scenario parameter
``redis: true`` (for a baseline without faults, or Redis-backed features without faults).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from observatory.builds.process import SupervisedProcess
from observatory.builds.provision import free_port
from observatory.errors import BuildError, ConfigError
from observatory.faults.proxy import FaultProxy
from observatory.faults.resp import ping
from observatory.settings import ScenarioSettings

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
EXECUTABLE = "redis-server"
READY_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken between choosing it and binding it
LOG_FILE = "redis.log"


def needs_redis(scenario: ScenarioSettings) -> bool:
    """True for a scenario with a Redis fault phase or the parameter ``redis: true``."""
    return scenario.params.get("redis") is True or any(
        phase.fault.startswith("redis_") for phase in scenario.phases
    )


class RedisServer:
    """``redis-server`` on a free loopback port, nothing persisted; a context manager."""

    def __init__(self, run_dir: Path, *, executable: str = EXECUTABLE) -> None:
        self.run_dir = run_dir
        self.executable = executable
        self.port = 0
        self._process: SupervisedProcess | None = None

    @property
    def address(self) -> tuple[str, int]:
        return HOST, self.port

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> RedisServer:
        path = shutil.which(self.executable)
        if path is None:
            raise ConfigError(
                f"{self.executable!r} not found on PATH: runs with Redis (redis_* phases or "
                "the scenario param redis: true) need a local redis-server (apt install "
                "redis-server)"
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, START_ATTEMPTS + 1):
            if self._start_once(path):
                log.info("private redis-server on %s:%s (pid %s)", HOST, self.port, self.pid)
                return self
            log.warning("redis-server start %d/%d failed", attempt, START_ATTEMPTS)
        tail = self._process.log_tail(10) if self._process is not None else ""
        raise BuildError(f"private redis-server did not start; last log lines:\n{tail}")

    def crashed(self) -> bool:
        """True when the server ended by itself (the run's Redis is gone, not a fault)."""
        return self._process is not None and self._process.exit_info() is not None

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop(grace=5.0)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _start_once(self, path: str) -> bool:
        self.stop()
        self.port = free_port()
        self._process = SupervisedProcess(
            self._argv(path), env=_env(), log_path=self.run_dir / LOG_FILE, cwd=self.run_dir
        )
        self._process.start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if ping(HOST, self.port, timeout=1.0):
                return True
            if self._process.wait_exit(0.05):
                return False  # e.g. the port was taken meanwhile
        self.stop()
        return False

    def _argv(self, path: str) -> list[str]:
        return [
            path,
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.run_dir.resolve()),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "",  # stdout: the supervisor captures it into redis.log
        ]  # fmt: skip


def _env() -> dict[str, str]:
    return {key: os.environ[key] for key in ("PATH", "LANG", "HOME") if key in os.environ}


@dataclass
class RunRedis:
    """The run's Redis: the server and the fault proxy the gateway talks to."""

    server: RedisServer
    proxy: FaultProxy

    @property
    def host(self) -> str:
        return self.proxy.address[0]

    @property
    def port(self) -> int:
        """The port the gateway is given: the proxy's."""
        return self.proxy.address[1]


@contextlib.contextmanager
def run_redis(scenario: ScenarioSettings, run_dir: Path) -> Iterator[RunRedis | None]:
    """Start Redis and its proxy when the scenario needs them (else yield None); stop both."""
    if not needs_redis(scenario):
        yield None
        return
    with RedisServer(run_dir) as server, FaultProxy(server.address) as proxy:
        yield RunRedis(server, proxy)
