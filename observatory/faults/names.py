"""Request names that tell the control plane apart from the data plane.

Scenarios name their control-plane requests ``control:<path>`` and their health probes
``health:<path>``; everything else is data plane. The analysis judges a fault phase on
data-plane requests only (a control-plane request timing out under its own pressure is
the fault, not its effect) and reports the health probes on their own. Pure constants:
the analysis and the Locust scenarios both import this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

CONTROL_PREFIX: Final = "control:"
HEALTH_PREFIX: Final = "health:"

# LiteLLM management endpoints that answer without a database (checked against 1.81.9):
# /health calls every configured model upstream, which makes it the expensive one.
DEFAULT_ENDPOINTS: Mapping[str, float] = {
    "/health": 1.0,
    "/model/info": 2.0,
    "/model_group/info": 2.0,
    "/v1/models": 2.0,
}
HEALTH_PATHS: Final = ("/health/liveliness", "/health/readiness")


def is_control(name: str) -> bool:
    return name.startswith(CONTROL_PREFIX)


def is_health(name: str) -> bool:
    return name.startswith(HEALTH_PREFIX)


def is_data_plane(name: str) -> bool:
    return not (is_control(name) or is_health(name))
