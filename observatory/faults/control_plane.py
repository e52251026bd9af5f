"""Control-plane pressure: the orchestrator flips a switch, the scenario's users obey it.

The pressure itself comes from a Locust user class (``scenarios/control_plane_pressure.py``)
that runs next to the data-plane users, so control-plane and data-plane requests share the
gateway exactly as in production. The orchestrator, not the Locust workers, decides when:
``ControlPlaneFault.apply`` writes ``control_plane.json`` into the run directory (atomically)
and ``remove`` deletes it; the control-plane users look at it every quarter second and hammer
the phase's endpoints only while it exists. Forked workers (``--processes``) share the run
directory; users on remote machines never see the switch and stay idle.

While the switch is on, the injector also probes the gateway's liveness endpoint once a
second from the orchestrator (``HealthProbe``): that is what the fault point observed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from observatory.errors import LoadError
from observatory.faults.health_probe import HealthProbe
from observatory.faults.params import ControlPlaneParams
from observatory.load.config import CONFIG_ENV, LoadConfig

SWITCH_NAME = "control_plane.json"
CHECK_EVERY_S = 0.25


@dataclass(frozen=True, slots=True)
class Switch:
    """What the control-plane users do while the switch is on."""

    endpoints: dict[str, float]  # path -> weight
    users: int | None  # how many control-plane users hammer (None: all)
    since: float  # epoch seconds


def switch_on(run_dir: Path, params: ControlPlaneParams) -> Path:
    """Write the switch atomically (a reader sees all of it or nothing)."""
    path = run_dir / SWITCH_NAME
    body = {"endpoints": params.endpoints, "users": params.users, "since": time.time()}
    partial = path.with_suffix(".tmp")
    try:
        partial.write_text(json.dumps(body), encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        raise LoadError(f"cannot switch control-plane pressure on at {path}: {exc}") from exc
    return path


def switch_off(run_dir: Path) -> None:
    try:
        (run_dir / SWITCH_NAME).unlink(missing_ok=True)
    except OSError as exc:
        raise LoadError(f"cannot switch control-plane pressure off in {run_dir}: {exc}") from exc


def read_switch(path: Path) -> Switch | None:
    """The switch at ``path``, or None when it is off (absent or unreadable)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    users = body.get("users")
    return Switch(
        endpoints={str(k): float(v) for k, v in dict(body.get("endpoints", {})).items()},
        users=int(users) if users is not None else None,
        since=float(body.get("since", 0.0)),
    )


def switch_path(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where this Locust process finds the switch (from the run's load config), if anywhere."""
    text = environ.get(CONFIG_ENV, "")
    if not text:
        return None
    run_dir = LoadConfig.from_json(text).run_dir
    return Path(run_dir) / SWITCH_NAME if run_dir else None


class SwitchWatch:
    """The switch as a user sees it: re-read at most every ``every`` seconds."""

    def __init__(self, path: Path | None, every: float = CHECK_EVERY_S) -> None:
        self.path = path
        self.every = every
        self._checked = -float("inf")
        self._current: Switch | None = None

    def current(self) -> Switch | None:
        now = time.monotonic()
        if self.path is not None and now - self._checked >= self.every:
            self._checked = now
            self._current = read_switch(self.path)
        return self._current


@dataclass
class ControlPlaneFault:
    """The ``control_plane`` injector: switch on, probe health, switch off."""

    run_dir: Path
    params: ControlPlaneParams
    probe: HealthProbe

    def apply(self) -> None:
        self._on_at = time.monotonic()
        switch_on(self.run_dir, self.params)
        self.probe.start()

    def remove(self) -> None:
        switch_off(self.run_dir)
        self._on_s = time.monotonic() - self._on_at
        self.probe.stop()

    def measure(self) -> dict[str, Any]:
        return {
            "switch": SWITCH_NAME,
            "switched_on_s": round(self._on_s, 3),
            "endpoints": self.params.endpoints,
            "users": self.params.users,
            "health_probe": self.probe.summary(),
        }
