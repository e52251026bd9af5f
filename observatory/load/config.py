"""What every Locust process of one run must agree on, passed as one JSON document.

The runner puts it in the environment (``OBSERVATORY_LOAD_CONFIG``), Locust reads it as a
custom command-line option, and the master ships custom options to every worker with each
spawn message, so local and remote workers see the same window grid and profile. The
gateway API key is deliberately not part of it: it travels in its own environment variable
and never crosses the master/worker channel.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from observatory.errors import InputError

CONFIG_ENV: Final = "OBSERVATORY_LOAD_CONFIG"
API_KEY_ENV: Final = "OBSERVATORY_LOAD_API_KEY"
CONFIG_OPTION: Final = "--observatory-config"
UPSTREAM_HEADER: Final = "x-upstream-service-time-ms"
DEFAULT_OVERHEAD_HEADER: Final = "x-litellm-overhead-duration-ms"


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """The run parameters of one load run, shared by master and workers."""

    run_start: float  # epoch seconds; window i covers [run_start + i*window_s, +window_s)
    duration_s: float
    window_s: float
    profile: dict[str, Any]  # ClosedProfile / OpenProfile as JSON
    params: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""  # master only: where spool.jsonl and status.json go
    overhead_header: str | None = DEFAULT_OVERHEAD_HEADER
    upstream_header: str = UPSTREAM_HEADER
    saturation_cpu: float = 0.85
    stop_timeout_s: float = 10.0
    late_after_ms: float = 10.0
    drop_after_s: float = 10.0

    @property
    def deadline(self) -> float:
        return self.run_start + self.duration_s

    @property
    def open_model(self) -> bool:
        return self.profile.get("model") == "open"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LoadConfig:
        """Parse the document; raise InputError naming what is wrong."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{CONFIG_ENV}: not valid JSON ({exc.msg} at {exc.pos})") from None
        if not isinstance(data, dict):
            raise InputError(f"{CONFIG_ENV}: expected a JSON object, got {type(data).__name__}")
        try:
            config = cls(**data)
        except TypeError as exc:
            raise InputError(f"{CONFIG_ENV}: {exc}") from None
        if config.window_s <= 0 or config.duration_s <= 0:
            raise InputError(f"{CONFIG_ENV}: window_s and duration_s must be positive")
        return config
