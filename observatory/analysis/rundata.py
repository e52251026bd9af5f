"""The input of the analysis: one run's measurements as plain pandas frames.

The store fills a ``RunData`` from the database; tests and benchmarks build one
with ``RunData.empty`` plus frames of their own, or with ``analysis.synthetic``.
Nothing here touches a database or the network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from observatory.domain import FaultPhase
from observatory.errors import InputError

WINDOW_COLUMNS: dict[str, str] = {
    "series": "object",
    "name": "object",
    "t": "float64",
    "length_s": "float64",
    "count": "int64",
    "failures": "int64",
    "histogram": "object",
    "p50": "float64",
    "p90": "float64",
    "p95": "float64",
    "p99": "float64",
    "p999": "float64",
    "max": "float64",
    "saturated": "bool",
}
ERROR_COLUMNS: dict[str, str] = {
    "t": "float64",
    "name": "object",
    "category": "object",
    "count": "int64",
    "message": "object",  # failure signature (observatory.signature); "" when unknown
}
RESOURCE_COLUMNS: dict[str, str] = {
    "t": "float64",
    "role": "object",
    "rss_mb": "float64",
    "uss_mb": "float64",
    "cpu_percent": "float64",
    "threads": "float64",
    "fds": "float64",
    "connections": "float64",
}
# Measured for supervised gateways only; analysis reads it when present.
OPTIONAL_RESOURCE_COLUMNS: dict[str, str] = {"log_bytes": "float64"}


def empty_frame(columns: dict[str, str]) -> pd.DataFrame:
    """An empty frame with the given columns and dtypes."""
    return pd.DataFrame({col: pd.Series(dtype=dtype) for col, dtype in columns.items()})


def frame(rows: list[dict[str, object]], columns: dict[str, str]) -> pd.DataFrame:
    """A frame from row dicts; missing optional cells get neutral values."""
    if not rows:
        return empty_frame(columns)
    data = pd.DataFrame(rows)
    for col, dtype in columns.items():
        if col not in data:
            data[col] = _neutral(col, dtype)
    return data[list(columns)].astype(columns)


def _neutral(col: str, dtype: str) -> str | bool | int | float:
    if col in ("histogram", "message"):
        return ""
    if dtype == "bool":
        return False
    if dtype == "int64":
        return 0
    return float("nan")


@dataclass(frozen=True)
class RunData:
    """Everything the analysis needs from one run (see docs/statistics.md)."""

    windows: pd.DataFrame
    errors: pd.DataFrame
    resources: pd.DataFrame
    phases: tuple[FaultPhase, ...]
    duration_s: float
    warmup_s: float
    window_s: float
    open_model: bool
    crash: str | None = None
    end_reason: str | None = None
    shared: frozenset[float] = frozenset()  # window starts measured beside busy neighbours
    started_at: float | None = None  # epoch seconds of t = 0; runs started together share it

    @classmethod
    def empty(
        cls,
        *,
        duration_s: float = 600.0,
        warmup_s: float = 60.0,
        window_s: float = 10.0,
        open_model: bool = False,
        crash: str | None = None,
    ) -> RunData:
        """A run with no measurements at all (e.g. the gateway never came up)."""
        return cls(
            windows=empty_frame(WINDOW_COLUMNS),
            errors=empty_frame(ERROR_COLUMNS),
            resources=empty_frame(RESOURCE_COLUMNS),
            phases=(),
            duration_s=duration_s,
            warmup_s=warmup_s,
            window_s=window_s,
            open_model=open_model,
            crash=crash,
        )

    def with_frames(
        self,
        windows: pd.DataFrame | None = None,
        errors: pd.DataFrame | None = None,
        resources: pd.DataFrame | None = None,
    ) -> RunData:
        """A copy with some frames replaced (RunData itself is immutable)."""
        return replace(
            self,
            windows=self.windows if windows is None else windows,
            errors=self.errors if errors is None else errors,
            resources=self.resources if resources is None else resources,
        )

    def with_shared(self, shared: frozenset[float]) -> RunData:
        """A copy whose windows starting at ``shared`` were measured beside busy neighbours."""
        return replace(self, shared=shared)

    def measured_with(self, other: RunData) -> bool:
        """True when both runs ran side by side: one start, one window grid."""
        return (
            self.started_at is not None
            and self.started_at == other.started_at
            and self.window_s == other.window_s
        )

    def validate(self) -> None:
        """Raise InputError naming the first missing column or impossible number."""
        for label, data, columns in (
            ("windows", self.windows, WINDOW_COLUMNS),
            ("errors", self.errors, ERROR_COLUMNS),
            ("resources", self.resources, RESOURCE_COLUMNS),
        ):
            missing = [col for col in columns if col not in data.columns]
            if missing:
                raise InputError(
                    f"run data: {label} lacks column(s) {', '.join(missing)}; "
                    f"expected: {', '.join(columns)}"
                )
        if self.window_s <= 0:
            raise InputError(f"run data: window_s must be positive, got {self.window_s!r}")
        if not 0 <= self.warmup_s < self.duration_s:
            raise InputError(
                f"run data: need 0 <= warmup_s < duration_s, got warmup_s={self.warmup_s!r}, "
                f"duration_s={self.duration_s!r}"
            )
