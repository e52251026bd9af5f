"""Shared helpers of the load tests (imported by conftest and the test modules)."""

from __future__ import annotations

from typing import Any

import httpx

from observatory.settings import ScenarioSettings

API_KEY = "sk-observatory-test-9f8e7d6c"


class Upstream:
    """The running mock upstream and its admin endpoints."""

    def __init__(self, url: str) -> None:
        self.url = url

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/admin/stats", timeout=10).json()

    def reset(self) -> None:
        httpx.post(f"{self.url}/admin/reset-stats", timeout=10).raise_for_status()
        httpx.put(f"{self.url}/admin/faults", json={}, timeout=10).raise_for_status()

    def faults(self, **knobs: Any) -> None:
        httpx.put(f"{self.url}/admin/faults", json=knobs, timeout=10).raise_for_status()


def scenario(file: str, **overrides: Any) -> ScenarioSettings:
    values: dict[str, Any] = {
        "file": file,
        "profile": {"model": "closed", "users": 4, "spawn_rate": 50},
        "duration": 5,
        "warmup": 1,
        "window": 1,
        "processes": 1,
    }
    values.update(overrides)
    return ScenarioSettings.model_validate(values)
