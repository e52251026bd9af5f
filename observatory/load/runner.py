"""Start and supervise one Locust load run as a subprocess.

gevent never enters the service process: Locust runs headless in its own process group
(``--processes N`` forks the workers), with the observatory plugin next to the scenario
file. Everything the processes must agree on travels in ``OBSERVATORY_LOAD_CONFIG``; the
gateway API key travels in ``OBSERVATORY_LOAD_API_KEY``, never on the command line.

The load stops by itself: the plugin drains at the run's deadline, Locust's ``-t`` is a
backstop behind it, and a watchdog thread here kills the process tree if both failed.

Remote workers may join a run (the master binds ``settings.load.master_host`` on the port
recorded in ``<run_dir>/load.json``)::

    OBSERVATORY_LOAD_API_KEY=... python -m locust --worker --master-host HOST \\
        --master-port PORT -f observatory/load/plugin.py,scenarios/chat.py

The run parameters reach them with the master's spawn message; the users (and, in the
open model, the arrival rate) are rebalanced over all workers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit

import psutil

from observatory.errors import (
    ConfigError,
    ForbiddenTargetError,
    InputError,
    LoadError,
    NotFoundError,
)
from observatory.load.config import (
    API_KEY_ENV,
    CONFIG_ENV,
    DEFAULT_OVERHEAD_HEADER,
    LoadConfig,
)
from observatory.load.redaction import redact
from observatory.load.spool import SPOOL_NAME
from observatory.load.status import STATUS_NAME, read_status
from observatory.markers import marked
from observatory.settings import (
    PROJECT_ROOT,
    ClosedProfile,
    OpenProfile,
    ScenarioSettings,
    Settings,
    is_allowed_target,
)

log = logging.getLogger(__name__)

PLUGIN_PATH: Final = Path(__file__).with_name("plugin.py")
LOG_NAME: Final = "locust.log"
META_NAME: Final = "load.json"
PROBE_TIMEOUT_S: Final = 3.0
READY_STATES: Final = frozenset({"running", "draining", "stopped"})
LOCUST_BACKSTOP_S: Final = 15.0  # Locust's own -t, after our drain would have finished
WATCHDOG_SLACK_S: Final = 90.0  # the master may wait stop_timeout + 60 s for workers
EXPECT_WORKERS_S: Final = 60.0  # Locust gives up when its workers do not connect


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    host: str
    port: int


@dataclass
class LoadProcess:
    """A running Locust master (and its workers), with its spool and status files."""

    process: subprocess.Popen[bytes]
    run_dir: Path
    run_start: float  # epoch seconds: window 0 starts here (known once the master runs)
    hard_deadline: float  # epoch seconds: the watchdog kills the tree after this
    master_port: int
    affinity: list[int] | None
    log_file: IO[bytes]
    secrets: tuple[str, ...] = field(default=(), repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def spool_path(self) -> Path:
        return self.run_dir / SPOOL_NAME

    @property
    def status_path(self) -> Path:
        return self.run_dir / STATUS_NAME

    @property
    def log_path(self) -> Path:
        return self.run_dir / LOG_NAME

    @property
    def returncode(self) -> int | None:
        return self.process.poll()

    def status(self) -> dict[str, Any]:
        """The master's last live status ({} before the first one)."""
        return read_status(self.status_path)

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, or None if still running after ``timeout`` seconds."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self._reap()
        return code

    def stop(self, grace: float = 30.0) -> int:
        """Graceful stop (SIGTERM: the master drains and flushes), then kill the tree."""
        self._stopping.set()
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("load generator %d ignored SIGTERM for %gs; killing", self.pid, grace)
        self._reap()
        return self.process.wait()

    def kill(self) -> None:
        """Kill the whole tree at once (no drain)."""
        self._stopping.set()
        self._reap()
        self.process.wait()

    def _reap(self) -> None:
        """SIGKILL whatever is left of the process group (workers outliving the master)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.log_file.close()

    def _watch(self) -> None:
        """Watchdog: keep the affinity on new workers; kill the tree after the deadline."""
        while not self._stopping.wait(1.0):
            if self.process.poll() is not None:
                self._reap()
                return
            if self.affinity is not None:
                _apply_affinity(self.process.pid, self.affinity, children=True)
            if time.time() > self.hard_deadline:
                log.error("load generator %d outlived its deadline; killing it", self.pid)
                self.stop(grace=5.0)
                return


def start_load(
    scenario: ScenarioSettings,
    scenario_name: str,
    target_url: str,
    api_key: str,
    run_dir: Path,
    settings: Settings,
    run_start: datetime | None = None,
    *,
    overhead_header: str | None = DEFAULT_OVERHEAD_HEADER,
    stop_timeout: float = 30.0,
    ready_timeout: float = 60.0,
) -> LoadProcess:
    """Launch the load run; return once its users start. Nothing starts on bad input.

    ``run_start`` aligns the windows; by default they start when the users do (read it
    back from ``LoadProcess.run_start``), so Locust's start-up never eats into the duration.
    """
    scenario_file = scenario_path(scenario, scenario_name, settings)
    target = check_target(target_url, settings.allowed_targets)
    _check_profile(scenario)
    affinity = _check_affinity(settings.load.cpu_affinity)
    _probe(target)
    config = LoadConfig(
        # None: the master starts the windows when its users start (start-up excluded)
        run_start=run_start.timestamp() if run_start is not None else 0.0,
        duration_s=scenario.duration,
        window_s=scenario.window,
        profile=scenario.profile.model_dump(mode="json"),
        params=dict(scenario.params),
        run_dir=str(run_dir.resolve()),
        overhead_header=overhead_header,
        saturation_cpu=settings.load.saturation_cpu,
        stop_timeout_s=stop_timeout,
        late_after_ms=float(scenario.params.get("late_after_ms", 10.0)),
        drop_after_s=float(scenario.params.get("drop_after", max(10.0, scenario.window))),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port(settings.load.master_host)
    command = _command(scenario, scenario_file, target, settings, port, stop_timeout)
    load = _spawn(command, config, api_key, run_dir, port, affinity)
    _await_ready(load, ready_timeout)
    load.run_start = float(load.status()["run_start"])
    load.hard_deadline = load.run_start + scenario.duration + stop_timeout + WATCHDOG_SLACK_S
    _write_meta(load, command, config, target, scenario_name, scenario)
    threading.Thread(target=load._watch, name=f"load-watchdog-{load.pid}", daemon=True).start()
    return load


def known_scenarios(settings: Settings) -> list[str]:
    """Configured scenario names and the scenario files present in the scenarios dir."""
    files = {p.stem for p in settings.scenarios_dir.glob("*.py") if not p.stem.startswith("_")}
    return sorted(set(settings.scenarios) | files)


def scenario_path(scenario: ScenarioSettings, name: str, settings: Settings) -> Path:
    path = Path(scenario.file)
    if not path.is_absolute():
        path = settings.scenarios_dir / path
    if path.suffix != ".py" or not path.is_file():
        raise NotFoundError(
            f"unknown scenario {name!r}: no scenario file {scenario.file!r} in "
            f"{settings.scenarios_dir}; known: {', '.join(known_scenarios(settings))}"
        )
    return path.resolve()


def check_target(url: str, allowed: list[str]) -> Target:
    """The parsed target; ForbiddenTargetError unless loopback or allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"target {url!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")
    if parts.username or parts.password:
        raise InputError("target URL must not carry credentials (pass the API key instead)")
    host = parts.hostname
    if not is_allowed_target(host, allowed):
        listed = ", ".join(allowed) or "none"
        raise ForbiddenTargetError(
            f"target host {host!r} is neither loopback nor in allowed_targets ({listed})"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InputError(f"target {url!r}: bad port") from None
    return Target(url=url.rstrip("/"), host=host, port=port)


def _check_profile(scenario: ScenarioSettings) -> None:
    profile = scenario.profile
    if isinstance(profile, OpenProfile) and profile.max_in_flight < scenario.processes:
        raise InputError(
            f"profile.max_in_flight ({profile.max_in_flight}) must be at least processes "
            f"({scenario.processes}): every load process needs an in-flight slot"
        )


def _check_affinity(cpus: list[int] | None) -> list[int] | None:
    if cpus is None:
        return None
    available = sorted(os.sched_getaffinity(0))
    missing = sorted(set(cpus) - set(available))
    if missing or not cpus:
        raise ConfigError(
            f"load.cpu_affinity: CPU(s) {missing or cpus} not available; "
            f"this process may use CPUs {available}"
        )
    return sorted(set(cpus))


def _probe(target: Target) -> None:
    """Fail fast, before any process starts, when nothing listens at the target."""
    try:
        with socket.create_connection((target.host, target.port), timeout=PROBE_TIMEOUT_S):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LoadError(f"gateway at {target.url} is unreachable: {reason}") from None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _users(profile: ClosedProfile | OpenProfile) -> tuple[int, float]:
    if isinstance(profile, OpenProfile):
        # Users are the in-flight slots; all of them exist within about a second.
        return profile.max_in_flight, float(profile.max_in_flight)
    return profile.users, profile.spawn_rate


def _command(
    scenario: ScenarioSettings,
    scenario_file: Path,
    target: Target,
    settings: Settings,
    port: int,
    stop_timeout: float,
) -> list[str]:
    users, spawn_rate = _users(scenario.profile)
    backstop = scenario.duration + stop_timeout + LOCUST_BACKSTOP_S
    return [
        sys.executable, "-m", "locust",
        "-f", f"{PLUGIN_PATH},{scenario_file}",
        "--headless", "--only-summary",
        "--processes", str(scenario.processes),
        "--master-bind-host", settings.load.master_host,
        "--master-bind-port", str(port),
        "--master-port", str(port),  # forked workers connect with this one
        "--expect-workers-max-wait", f"{EXPECT_WORKERS_S:g}",
        "--enable-rebalancing",  # remote workers joining a running test get users too
        "-H", target.url,
        "-u", str(users), "-r", f"{spawn_rate:g}",
        "-t", f"{int(backstop) + 1}s",
        "--stop-timeout", f"{stop_timeout:g}",
        "--exit-code-on-error", "0",  # failed requests are measurements, not our failure
        "--loglevel", "INFO",
    ]  # fmt: skip


def _spawn(
    command: list[str],
    config: LoadConfig,
    api_key: str,
    run_dir: Path,
    port: int,
    affinity: list[int] | None,
) -> LoadProcess:
    env = dict(
        marked({k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_LOAD_")})
    )
    env[CONFIG_ENV] = config.to_json()
    env[API_KEY_ENV] = api_key
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    log_file = (run_dir / LOG_NAME).open("ab")
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(PROJECT_ROOT),
            start_new_session=True,  # one process group: stop() can kill every worker
        )
    except OSError as exc:
        log_file.close()
        raise LoadError(f"cannot start Locust: {exc}") from exc
    if affinity is not None:
        _apply_affinity(process.pid, affinity, children=False)
    return LoadProcess(
        process, run_dir, config.run_start, math.inf, port, affinity, log_file, (api_key,)
    )


def _apply_affinity(pid: int, cpus: list[int], *, children: bool) -> None:
    try:
        root = psutil.Process(pid)
        for proc in [root, *(root.children(recursive=True) if children else [])]:
            if proc.cpu_affinity() != cpus:
                proc.cpu_affinity(cpus)
    except psutil.Error:
        pass  # the process is gone; the watchdog notices


def _write_meta(
    load: LoadProcess,
    command: list[str],
    config: LoadConfig,
    target: Target,
    scenario_name: str,
    scenario: ScenarioSettings,
) -> None:
    meta = {
        "pid": load.pid,
        "scenario": scenario_name,
        "scenario_file": scenario.file,
        "target": target.url,
        "processes": scenario.processes,
        "master_port": load.master_port,
        "cpu_affinity": load.affinity,
        "run_start": load.run_start,
        "deadline": load.run_start + config.duration_s,
        "hard_deadline": load.hard_deadline,
        "window_s": config.window_s,
        "command": command,  # no secret: the API key is in the environment only
    }
    (load.run_dir / META_NAME).write_text(json.dumps(meta, indent=2))


def _await_ready(load: LoadProcess, timeout: float) -> None:
    """Return once the master runs; LoadError (and nothing left running) otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if load.status().get("state") in READY_STATES:
            return
        if load.process.poll() is not None:
            load.kill()
            raise LoadError(
                f"Locust exited at start-up (code {load.process.returncode}): {_tail(load)}"
            )
        time.sleep(0.1)
    load.stop(grace=5.0)
    raise LoadError(f"Locust did not start within {timeout:g}s: {_tail(load)}")


def _tail(load: LoadProcess, lines: int = 8) -> str:
    try:
        text = load.log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return redact(" | ".join(kept), load.secrets, limit=2000) or "(empty log)"
