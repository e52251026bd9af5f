"""control-plane-pressure: management requests compete with the data plane and its probes.

Three kinds of users share the gateway; the profile's ``users`` (closed model) or
``max_in_flight`` (open model) counts all of them:

- ``ControlPlaneUser`` (``control_plane_users`` of them, default 4): idle until the
  orchestrator's ``control_plane`` phase switches the pressure on, then GETs on the phase's
  endpoints back to back (weighted; by default LiteLLM's /health, which calls every model,
  /model/info, /model_group/info and /v1/models), named ``control:<path>``;
- ``HealthProbeUser`` (one): GET /health/liveliness and /health/readiness every
  ``health_interval`` seconds, named ``health:<path>``, as a Kubernetes probe would: the
  analysis reports their latency under pressure on its own;
- ``PressureDataUser``: all the other users, chat completions with fresh prompts
  (``_fault_traffic``), paced by the run's profile.

Params: control_plane_users (int, 4), health_interval (float s, 1.0), health_timeout
(float s, 5.0), and those of ``_fault_traffic``.
"""

from __future__ import annotations

import itertools
import os
import random
from dataclasses import dataclass
from typing import Any

from _fault_traffic import DataPlaneUser, traffic
from locust import FastHttpUser, constant_pacing, task

from observatory.errors import InputError
from observatory.faults.control_plane import SwitchWatch, switch_path
from observatory.faults.names import CONTROL_PREFIX, HEALTH_PATHS, HEALTH_PREFIX
from observatory.load.config import API_KEY_ENV, CONFIG_ENV, LoadConfig
from observatory.load.helpers import param, params, pick

IDLE_S = 0.25  # how often an idle control-plane user looks at the switch


@dataclass(frozen=True)
class Pressure:
    control_users: int
    health_interval: float
    health_timeout: float


def pressure(values: dict[str, Any]) -> Pressure:
    found = Pressure(
        control_users=param(values, "control_plane_users", 4),
        health_interval=param(values, "health_interval", 1.0),
        health_timeout=param(values, "health_timeout", 5.0),
    )
    if found.control_users < 1 or found.health_interval <= 0 or found.health_timeout <= 0:
        raise InputError(
            "scenario params control_plane_users (>= 1), health_interval (> 0) and "
            f"health_timeout (> 0) are out of range: {found}"
        )
    _check_users(found.control_users)
    return found


def _check_users(control_users: int) -> None:
    """Every kind of user must get at least one slot of the profile."""
    text = os.environ.get(CONFIG_ENV, "")
    if not text:
        return
    profile = LoadConfig.from_json(text).profile
    total = int(profile.get("max_in_flight" if profile.get("model") == "open" else "users", 0))
    if total < control_users + 2:
        raise InputError(
            f"profile has {total} users; control-plane-pressure needs more than "
            f"control_plane_users ({control_users}) + 1 health probe, the rest send data-plane "
            "requests"
        )


SETTINGS = pressure(params())  # bad parameters fail the run's start-up
traffic(params())
_ORDINALS = itertools.count()


def _headers() -> dict[str, str]:
    key = os.environ.get(API_KEY_ENV, "")
    return {"Authorization": f"Bearer {key}"} if key else {}


class ControlPlaneUser(FastHttpUser):
    fixed_count = SETTINGS.control_users
    network_timeout = 30.0

    def on_start(self) -> None:
        self.ordinal = next(_ORDINALS)  # per load process: phase param users counts per process
        self.watch = SwitchWatch(switch_path())
        self.rng = random.Random()
        self.headers = _headers()
        self.pressing = False

    def wait_time(self) -> float:
        return 0.0 if self.pressing else IDLE_S

    @task
    def press(self) -> None:
        switch = self.watch.current()
        self.pressing = switch is not None and (switch.users is None or self.ordinal < switch.users)
        if switch is None or not self.pressing:
            return
        path = pick(switch.endpoints, self.rng)
        self.client.get(path, headers=self.headers, name=CONTROL_PREFIX + path)


class HealthProbeUser(FastHttpUser):
    fixed_count = 1
    network_timeout = SETTINGS.health_timeout
    connection_timeout = SETTINGS.health_timeout
    wait_time = constant_pacing(SETTINGS.health_interval)

    def on_start(self) -> None:
        self.headers = _headers()

    @task
    def probe(self) -> None:
        for path in HEALTH_PATHS:
            self.client.get(path, headers=self.headers, name=HEALTH_PREFIX + path)


class PressureDataUser(DataPlaneUser):
    pass
