"""Control-plane pressure in a real Locust run: the orchestrator's switch turns it on and off,
health probes and data-plane requests go on throughout, each under its own request name."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from observatory.builds.provision import RunningGateway
from observatory.domain import Window
from observatory.errors import LoadError
from observatory.faults.control_plane import SWITCH_NAME, ControlPlaneFault
from observatory.faults.health_probe import HealthProbe
from observatory.faults.params import ControlPlaneParams
from observatory.load.runner import start_load
from observatory.load.spool import read_spool
from observatory.settings import ScenarioSettings, Settings

ON_AT, OFF_AT = 2.5, 5.5  # seconds into the load
SLACK_S = 1.0  # a control-plane user finishes its request and looks at the switch 4x a second


def pressure_scenario(users: int = 7, **params: object) -> ScenarioSettings:
    return ScenarioSettings.model_validate(
        {
            "file": "control_plane_pressure.py",
            "profile": {"users": users, "spawn_rate": 50, "wait_min": 0.05, "wait_max": 0.05},
            "duration": 8,
            "warmup": 1,
            "window": 1,
            "params": {"control_plane_users": 4, "health_interval": 0.25, **params},
        }
    )


def wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def test_pressure_only_while_switched_on_probes_and_data_throughout(
    gateway: RunningGateway, settings: Settings, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    load = start_load(
        pressure_scenario(), "control-plane-pressure", gateway.base_url, gateway.api_key,
        run_dir, settings, stop_timeout=5,
    )  # fmt: skip
    params = ControlPlaneParams(endpoints={"/health": 1.0, "/model/info": 1.0})
    fault = ControlPlaneFault(run_dir, params, HealthProbe(gateway.base_url, interval=0.25))
    try:
        wait_until(load.run_start + ON_AT)
        on = time.time()
        fault.apply()
        wait_until(load.run_start + OFF_AT)
        fault.remove()
        off = time.time()
    finally:
        assert load.wait(60) == 0
    assert not (run_dir / SWITCH_NAME).exists()
    hits = httpx.get(f"{gateway.base_url}/_hits", timeout=5).json()["hits"]
    control = [t for path, t in hits if path in ("/health", "/model/info")]
    health = [t for path, t in hits if path == "/health/liveliness"]
    chat = [t for path, t in hits if path == "/v1/chat/completions"]
    assert len(control) > 40
    assert on <= min(control)
    assert max(control) <= off + SLACK_S
    for series in (health, chat):  # before, during and after the pressure
        assert min(series) < on < max(series)
        assert any(on < t < off for t in series)
        assert max(series) > off + SLACK_S
    names = {w.name for w in read_spool(load.spool_path) if isinstance(w, Window)}
    assert {"control:/health", "control:/model/info", "health:/health/liveliness"} <= names
    assert "health:/health/readiness" in names
    assert any(name.startswith("chat:") for name in names)  # chat:<model>
    summary = fault.measure()["health_probe"]
    assert summary["probes"] >= 8
    assert summary["failures"] == {}


@pytest.mark.parametrize(
    ("users", "params", "message"),
    [
        (5, {}, "needs more than control_plane_users (4) + 1 health probe"),
        (7, {"control_plane_users": 0}, "control_plane_users (>= 1)"),
        (7, {"health_interval": "1s"}, "scenario param 'health_interval': expected float"),
    ],
)
def test_bad_pressure_settings_fail_the_start(
    gateway: RunningGateway,
    settings: Settings,
    tmp_path: Path,
    users: int,
    params: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(LoadError):
        start_load(
            pressure_scenario(users, **params), "control-plane-pressure", gateway.base_url,
            gateway.api_key, tmp_path / "run", settings, stop_timeout=5, ready_timeout=30,
        )  # fmt: skip
    assert message in (tmp_path / "run" / "locust.log").read_text()
