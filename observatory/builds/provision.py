"""The one entry point of a run into builds: start the candidate gateway, hand it back running.

``start_gateway`` provisions a pip build (cached venv), a command build or a URL build,
waits until it is ready and returns a :class:`RunningGateway`: a context manager that the
run pipeline samples, checks for crashes and finally stops.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from observatory.builds import litellm, readiness
from observatory.builds.command import render_command
from observatory.builds.process import REDACTED, CrashInfo, SupervisedProcess
from observatory.builds.sampler import MetricsProbe, Probe, ProcessTreeProbe
from observatory.builds.spec import parse_pip_spec
from observatory.builds.venv import ensure_venv, hold_venv, venv_info, verify_installed
from observatory.domain import ProvisionKind
from observatory.errors import BuildError, ConfigError, ForbiddenTargetError
from observatory.load.lifecycle import fleet_names
from observatory.markers import marked
from observatory.settings import (
    BuildSettings,
    GatewaySettings,
    Settings,
    is_allowed_target,
    redact_url,
)

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
CONFIG_FILE = "gateway-config.yaml"
LOG_FILE = "gateway.log"
STOP_GRACE = 10.0
# Environment variables a started gateway never inherits from us.
_SCRUBBED = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "DATABASE_URL")
# Nor any Redis settings: an inherited REDIS_URL would point LiteLLM at a shared Redis,
# whatever its config says (a run's Redis comes from faults.redis_gateway, explicitly).
_SCRUBBED_PREFIXES = ("OBSERVATORY_", "REDIS_")


class RunningGateway:
    """A gateway that is up. ``api_key`` is the master key: it is never part of its repr."""

    def __init__(
        self,
        *,
        kind: ProvisionKind,
        base_url: str,
        api_key: str,
        version: str,
        process: SupervisedProcess | None,
        fingerprint: dict[str, Any],
        cpu_affinity: list[int] | None,
        resources: ExitStack,
    ) -> None:
        self.kind = kind
        self.base_url = base_url
        self.version = version
        self.cpu_affinity = cpu_affinity
        self._api_key = api_key
        self._process = process
        self._fingerprint = fingerprint
        self._resources = resources

    @property
    def api_key(self) -> str:
        return self._api_key

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._process.log_path if self._process is not None else None

    def crash(self) -> CrashInfo | None:
        """Exit code or signal, time and log tail if the gateway died by itself; else None."""
        return self._process.exit_info() if self._process is not None else None

    def log_tail(self, lines: int = 40) -> str:
        return self._process.log_tail(lines) if self._process is not None else ""

    def fingerprint(self) -> dict[str, Any]:
        """Gateway version, package, python, command line (secrets removed)."""
        return dict(self._fingerprint)

    def resource_probe(self) -> Probe:
        """How the sampler measures this gateway: its process tree, or its /metrics."""
        if self._process is not None:
            process = self._process
            return ProcessTreeProbe("gateway", process.pid, lambda: process.output_bytes)
        return MetricsProbe("gateway", self.base_url + "/metrics", api_key=self._api_key)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop the gateway (whole tree: SIGTERM, ``grace`` s, SIGKILL) and release the venv;
        safe to call twice."""
        if self._process is not None:
            self._process.stop(grace)
        self._resources.close()

    def __repr__(self) -> str:
        return (
            f"RunningGateway(kind={self.kind.value!r}, base_url={self.base_url!r}, "
            f"version={self.version!r}, pid={self.pid})"
        )

    def __enter__(self) -> RunningGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_gateway(
    build: BuildSettings,
    gateway: GatewaySettings,
    settings: Settings,
    upstream_url: str,
    run_dir: Path,
) -> RunningGateway:
    """Provision ``build`` and return it running and ready; BuildError when it cannot be."""
    if build.url is not None:
        return _attach_url(build, gateway, settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    resources = ExitStack()
    try:
        if build.pip is not None:
            argv, facts = _pip_launch(build.pip, gateway, settings, run_dir, resources)
            kind = ProvisionKind.PIP
        else:
            argv, facts = _command_launch(build, gateway, upstream_url, run_dir)
            kind = ProvisionKind.COMMAND
        return _launch(kind, argv, facts, build, gateway, upstream_url, run_dir, resources)
    except BaseException:
        resources.close()
        raise


def _pip_launch(
    pip: str, gateway: GatewaySettings, settings: Settings, run_dir: Path, resources: ExitStack
) -> tuple[list[str], dict[str, Any]]:
    if gateway.kind != "litellm":
        raise ConfigError(
            f"pip builds are supported for gateway kind 'litellm' only (got {gateway.kind!r}); "
            "use a command build for other gateways"
        )
    spec = parse_pip_spec(pip)
    venv = ensure_venv(spec, settings.cache_dir)
    resources.enter_context(hold_venv(venv))
    verify_installed(venv, spec)
    info = venv_info(venv)
    config = litellm.config_path(gateway, run_dir / CONFIG_FILE)
    port = free_port()
    facts = {
        "package": spec.package,
        "spec": str(spec),
        "version": info.version_of(spec.package) or spec.version,
        "python": info.python,
        "venv": str(venv),
        "port": port,
        "config": config,
    }
    return litellm.argv(venv, config, port, gateway.num_workers), facts


def _command_launch(
    build: BuildSettings, gateway: GatewaySettings, upstream_url: str, run_dir: Path
) -> tuple[list[str], dict[str, Any]]:
    assert build.command is not None
    config = litellm.config_path(gateway, run_dir / CONFIG_FILE)
    port = free_port()
    argv = render_command(build.command, host=HOST, port=port, config=str(config))
    facts = {
        "package": gateway.package if gateway.kind == "litellm" else None,
        "version": build.resolved_version,
        "python": None,
        "port": port,
        "config": config,
    }
    return argv, facts


def _launch(
    kind: ProvisionKind,
    argv: list[str],
    facts: dict[str, Any],
    build: BuildSettings,
    gateway: GatewaySettings,
    upstream_url: str,
    run_dir: Path,
    resources: ExitStack,
) -> RunningGateway:
    config_path: Path = facts.pop("config")
    _write_gateway_config(gateway, upstream_url, config_path)
    key = gateway.master_key.get_secret_value()
    process = SupervisedProcess(
        argv, env=_child_env(gateway, upstream_url), log_path=run_dir / LOG_FILE,
        cwd=run_dir, secrets=[key, *litellm.secrets(gateway)],
    )  # fmt: skip
    process.start()
    resources.callback(process.stop, STOP_GRACE)
    if gateway.cpu_affinity is not None:
        process.set_cpu_affinity(gateway.cpu_affinity)
    base_url = f"http://{HOST}:{facts.pop('port')}"
    _await_ready(process, base_url, gateway, key)
    if gateway.cpu_affinity is not None:
        process.set_cpu_affinity(gateway.cpu_affinity)  # workers forked during start-up
    fingerprint = _fingerprint(kind, build, gateway, facts, _redact(argv, key))
    log.info("gateway %s ready at %s (pid %s)", facts["version"], base_url, process.pid)
    owned = resources.pop_all()  # from here on RunningGateway.stop() owns the teardown
    return RunningGateway(
        kind=kind, base_url=base_url, api_key=key, version=str(facts["version"]),
        process=process, fingerprint=fingerprint, cpu_affinity=gateway.cpu_affinity,
        resources=owned,
    )  # fmt: skip


def _await_ready(
    process: SupervisedProcess, base_url: str, gateway: GatewaySettings, key: str
) -> None:
    def failed() -> str | None:
        info = process.exit_info()
        if info is None:
            return None
        return f"exited with {info.how} before it was ready; last log lines:\n{info.log_tail}"

    try:
        readiness.wait_ready(
            base_url,
            readiness.probe_paths(gateway.kind),
            timeout=gateway.readiness_timeout,
            headers={"Authorization": f"Bearer {key}"},
            failed=failed,
        )
    except BuildError as exc:
        if process.exit_info() is not None:
            raise
        raise BuildError(f"{exc}; last log lines:\n{process.log_tail(30)}") from None


def _attach_url(
    build: BuildSettings, gateway: GatewaySettings, settings: Settings
) -> RunningGateway:
    assert build.url is not None
    base_url = build.url.rstrip("/")
    host = urlsplit(base_url).hostname or ""
    shown = redact_url(base_url)  # for messages and the fingerprint: no credentials
    if not is_allowed_target(host, settings.allowed_targets):
        raise ForbiddenTargetError(
            f"gateway url {shown!r}: host {host!r} is neither loopback nor in "
            f"allowed_targets ({', '.join(settings.allowed_targets) or 'none configured'})"
        )
    key = gateway.master_key.get_secret_value()
    headers = {"Authorization": f"Bearer {key}"}
    try:
        readiness.check_reachable(base_url, readiness.probe_paths(gateway.kind), headers=headers)
    except BuildError as exc:
        raise BuildError(redact_url(str(exc))) from None
    reported = _reported_version(base_url, headers) if gateway.kind == "litellm" else None
    version = build.version or reported or build.resolved_version
    facts = {"package": None, "version": version, "python": None, "reported_version": reported}
    fingerprint = _fingerprint(ProvisionKind.URL, build, gateway, facts, None)
    fingerprint["url"] = shown
    return RunningGateway(
        kind=ProvisionKind.URL, base_url=base_url, api_key=key, version=version,
        process=None, fingerprint=fingerprint, cpu_affinity=None, resources=ExitStack(),
    )  # fmt: skip


def _reported_version(base_url: str, headers: dict[str, str]) -> str | None:
    """LiteLLM reports its version on /health/readiness; other gateways may not."""
    try:
        body = httpx.get(base_url + "/health/readiness", headers=headers, timeout=5.0).json()
    except (httpx.HTTPError, ValueError):
        return None
    version = body.get("litellm_version") if isinstance(body, dict) else None
    return str(version) if version else None


def _write_gateway_config(gateway: GatewaySettings, upstream_url: str, path: Path) -> None:
    """LiteLLM gets its proxy config; any other gateway a neutral description to read."""
    if gateway.kind == "litellm":
        litellm.write_run_config(gateway, upstream_url, path)
        return
    config = litellm.deep_merge(
        {"upstream": {"url": upstream_url, "api_base": upstream_url.rstrip("/") + "/v1"},
         "models": [*gateway.models, *fleet_names(gateway.fleet or 0)],
         "master_key_env": "GATEWAY_MASTER_KEY"},
        gateway.proxy_config,
    )  # fmt: skip
    litellm.write_config(config, path)


def _child_env(gateway: GatewaySettings, upstream_url: str) -> dict[str, str]:
    """Our environment minus our own secrets and Python settings, plus the gateway's."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)
    }
    key = gateway.master_key.get_secret_value()
    env.update({"GATEWAY_MASTER_KEY": key, "UPSTREAM_URL": upstream_url})
    env.update(litellm.env(gateway) if gateway.kind == "litellm" else gateway.env)
    return dict(marked(env))


def _fingerprint(
    kind: ProvisionKind,
    build: BuildSettings,
    gateway: GatewaySettings,
    facts: dict[str, Any],
    command: list[str] | None,
) -> dict[str, Any]:
    return {
        "provision": kind.value,
        "gateway": build.gateway,
        "gateway_kind": gateway.kind,
        "num_workers": gateway.num_workers,
        "cpu_affinity": gateway.cpu_affinity,
        "observatory_python": platform.python_version(),
        "command": command,
        **{k: v for k, v in facts.items() if k not in ("port", "config")},
    }


def _redact(argv: list[str], secret: str) -> list[str]:
    return [arg.replace(secret, REDACTED) if secret else arg for arg in argv]


def free_port() -> int:
    """A free loopback port (the gateway binds it a moment later; collisions are unlikely)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def describe(gateway: RunningGateway) -> str:
    """One line for logs and the CLI."""
    where = f"pid {gateway.pid}" if gateway.pid is not None else "not managed"
    return f"{gateway.kind.value} gateway {gateway.version} at {gateway.base_url} ({where})"


__all__ = ["CrashInfo", "RunningGateway", "describe", "free_port", "start_gateway"]
