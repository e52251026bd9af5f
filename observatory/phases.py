"""Fault phases: at offset T inject fault F for duration D, then recover.

The orchestrator drives the phases (never the Locust workers, which may be many), records
when each really started and ended, and what the fault point measured, in ``fault_phases``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from observatory.errors import ConfigError, InputError
from observatory.faults.control_plane import ControlPlaneFault, switch_off
from observatory.faults.health_probe import HealthProbe
from observatory.faults.params import ControlPlaneParams, RedisDownParams, RedisSlowParams
from observatory.faults.redis_fault import RedisFault
from observatory.faults.redis_server import RunRedis
from observatory.settings import PhaseSettings, Settings
from observatory.store.db import transaction
from observatory.store.tables import FaultPhaseRow, utcnow
from observatory.upstream import admin

if TYPE_CHECKING:
    from observatory.builds.provision import RunningGateway

log = logging.getLogger(__name__)


class Injector(Protocol):
    """Applies one fault and removes it; ``measure`` reports what the fault point saw."""

    def apply(self) -> None: ...
    def remove(self) -> None: ...
    def measure(self) -> dict[str, Any]: ...


@dataclass
class ProviderFault:
    """A degraded provider: the mock upstream's knobs, restored afterwards."""

    upstream_url: str
    knobs: dict[str, Any]

    def apply(self) -> None:
        self._before = admin.get_faults(self.upstream_url)
        self._stats_before = admin.get_stats(self.upstream_url)
        admin.set_faults(self.upstream_url, **self.knobs)

    def remove(self) -> None:
        admin.replace_faults(self.upstream_url, self._before)

    def measure(self) -> dict[str, Any]:
        after = admin.get_stats(self.upstream_url)
        return {"knobs": self.knobs, "upstream_stats_before": self._stats_before, "after": after}


def provider_knobs(fault: str, params: dict[str, Any]) -> dict[str, Any]:
    """The upstream knobs of a provider fault, with documented defaults."""
    if fault == "provider_slow":
        return {"added_latency": params.get("added_latency", 2.0)}
    if fault == "provider_errors":
        return {
            "error_rate": params.get("error_rate", 0.5),
            "error_codes": params.get("error_codes", [500, 503]),
        }
    if fault == "provider_stall":
        return {"stall_rate": params.get("stall_rate", 1.0), "stall": params.get("stall", 10.0)}
    raise InputError(f"unknown provider fault {fault!r}")


InjectorFactory = Callable[[PhaseSettings], Injector]


def default_factory(
    settings: Settings,
    upstream_url: str,
    *,
    redis: RunRedis | None = None,
    gateway: RunningGateway | None = None,
    run_dir: Path | None = None,
) -> InjectorFactory:
    def make(phase: PhaseSettings) -> Injector:
        if phase.fault.startswith("provider_"):
            return ProviderFault(upstream_url, provider_knobs(phase.fault, phase.params))
        if phase.fault.startswith("redis_"):
            return redis_fault(phase, redis)
        if phase.fault == "control_plane":
            return control_plane_fault(phase, gateway, run_dir)
        raise InputError(f"fault {phase.fault!r} has no injector in this build of the observatory")

    return make


def redis_fault(phase: PhaseSettings, redis: RunRedis | None) -> RedisFault:
    """The run's Redis proxy switched slow or down (the pipeline starts Redis for such runs)."""
    if redis is None:
        raise ConfigError(f"fault {phase.fault!r} needs the run's Redis, and none was started")
    model = RedisSlowParams if phase.fault == "redis_slow" else RedisDownParams
    return RedisFault(redis, model.model_validate(phase.params))


def control_plane_fault(
    phase: PhaseSettings, gateway: RunningGateway | None, run_dir: Path | None
) -> ControlPlaneFault:
    """Pressure through the scenario's control-plane users; the gateway's health probed."""
    if gateway is None or run_dir is None:
        raise ConfigError("fault 'control_plane' needs the run's gateway and run directory")
    switch_off(run_dir)  # a switch left by an earlier attempt of this run must not press
    probe = HealthProbe(gateway.base_url, api_key=gateway.api_key)
    return ControlPlaneFault(run_dir, ControlPlaneParams.model_validate(phase.params), probe)


class PhaseDriver:
    """Called every tick by the pipeline; starts and ends phases on time."""

    def __init__(
        self,
        run_id: int,
        sessions: sessionmaker[Session],
        phases: list[PhaseSettings],
        factory: InjectorFactory,
    ) -> None:
        self.run_id = run_id
        self.sessions = sessions
        self.started: datetime | None = None
        # Injectors are made up front so a phase without one fails before any load is sent.
        self._pending = [(p, factory(p)) for p in sorted(phases, key=lambda p: p.at)]
        self._active: list[tuple[PhaseSettings, Injector, int]] = []

    def begin(self, started: datetime) -> None:
        """Phase offsets count from ``started`` (when load began)."""
        self.started = started

    def tick(self) -> None:
        if self.started is None:
            return
        elapsed = (utcnow() - self.started).total_seconds()
        for entry in [a for a in self._active if elapsed >= a[0].at + a[0].duration]:
            self._end(*entry)
        while self._pending and elapsed >= self._pending[0][0].at:
            self._begin(*self._pending.pop(0))

    def stop(self) -> None:
        """End every active phase (the run is over): faults never outlive their run."""
        for entry in list(self._active):
            self._end(*entry)
        self._pending.clear()

    def _begin(self, phase: PhaseSettings, injector: Injector) -> None:
        injector.apply()
        with transaction(self.sessions) as session:
            row = FaultPhaseRow(
                run_id=self.run_id,
                fault=phase.fault,
                start_offset_s=phase.at,
                duration_s=phase.duration,
                params=phase.params,
                started_at=utcnow(),
            )
            session.add(row)
            session.flush()
            row_id = row.id
        self._active.append((phase, injector, row_id))
        log.info("run %s: fault %s on for %.0fs", self.run_id, phase.fault, phase.duration)

    def _end(self, phase: PhaseSettings, injector: Injector, row_id: int) -> None:
        self._active.remove((phase, injector, row_id))
        injector.remove()
        measured = injector.measure()
        with transaction(self.sessions) as session:
            row = session.get(FaultPhaseRow, row_id)
            if row is not None:
                row.ended_at = utcnow()
                row.measured = measured
        log.info("run %s: fault %s removed", self.run_id, phase.fault)
