"""Client helpers for the mock upstream's admin API (fault phases, tests, benchmarks).

httpx failures become ``LoadError`` (the observatory's own part failed); a 422 from
the server becomes ``InputError`` carrying the server's message, which names the field.
"""

from __future__ import annotations

from typing import Any

import httpx

from observatory.errors import InputError, LoadError
from observatory.settings import FaultKnobs

TIMEOUT = 5.0


def set_faults(url: str, **knobs: object) -> FaultKnobs:
    """Change the named knobs (others keep their current value); returns all knobs."""
    return FaultKnobs.model_validate(_call("POST", url, "/admin/faults", knobs))


def replace_faults(url: str, knobs: FaultKnobs) -> FaultKnobs:
    """Replace every knob with ``knobs`` (e.g. ``FaultKnobs()`` clears all faults)."""
    payload = knobs.model_dump(mode="json")
    return FaultKnobs.model_validate(_call("PUT", url, "/admin/faults", payload))


def get_faults(url: str) -> FaultKnobs:
    return FaultKnobs.model_validate(_call("GET", url, "/admin/faults", None))


def get_stats(url: str) -> dict[str, Any]:
    """Requests per endpoint, faults per kind, requests in flight (admin calls excluded)."""
    return _call("GET", url, "/admin/stats", None)


def reset_stats(url: str) -> dict[str, Any]:
    return _call("POST", url, "/admin/reset-stats", None)


def _call(method: str, url: str, path: str, payload: object) -> dict[str, Any]:
    target = url.rstrip("/") + path
    try:
        response = httpx.request(method, target, json=payload, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise LoadError(f"mock upstream admin {method} {target} failed: {exc}") from exc
    if response.status_code == 422:
        raise InputError(response.json()["error"]["message"])
    if response.status_code != 200:
        raise LoadError(
            f"mock upstream admin {method} {target} answered {response.status_code}: "
            f"{response.text[:200]}"
        )
    body: dict[str, Any] = response.json()
    return body
