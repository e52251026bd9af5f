"""The parameters each fault phase accepts: its knobs and its verdict thresholds.

A phase's ``params`` are checked when the configuration is loaded (an unknown name or a
bad value is a configuration error naming the phase and what is accepted) and stored with
their defaults filled in, so ``fault_phases.params`` says exactly what was injected.

Every fault also accepts the verdict thresholds of ``GateParams`` (all off by default);
``observatory.analysis.phases`` turns them into findings that decide the run's verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from observatory.durations import parse_duration
from observatory.errors import InputError
from observatory.faults.names import DEFAULT_ENDPOINTS


def _duration(value: object) -> float:
    try:
        return parse_duration(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


Seconds = Annotated[float, BeforeValidator(_duration)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
ErrorCode = Literal[429, 500, 503]  # what the mock upstream can answer with


class GateParams(BaseModel):
    """Verdict thresholds of one phase (absolute limits, checked without a baseline)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # data-plane p99 during the phase / data-plane p99 in the calm before it
    max_p99_ratio: float | None = Field(default=None, gt=0)
    # data-plane failures / requests during the phase
    max_error_rate: Fraction | None = None
    # seconds from the phase's end until p99 and error rate are back to their calm level
    max_recovery: Seconds | None = None


class RedisSlowParams(GateParams):
    delay: Seconds = Field(default=2.0, gt=0, le=60)  # held per chunk, in each direction


class RedisDownParams(GateParams):
    mode: Literal["refuse", "blackhole"] = "refuse"


class ProviderSlowParams(GateParams):
    added_latency: Seconds = Field(default=2.0, gt=0)


class ProviderErrorsParams(GateParams):
    error_rate: Fraction = 0.5
    error_codes: list[ErrorCode] = Field(default_factory=lambda: list[ErrorCode]([500, 503]))


class ProviderStallParams(GateParams):
    stall_rate: Fraction = 1.0
    stall: Seconds = Field(default=10.0, gt=0)


class ControlPlaneParams(GateParams):
    endpoints: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_ENDPOINTS))
    users: int | None = Field(default=None, ge=1)  # active control-plane users (default all)
    max_health_p99: Seconds | None = Field(default=None, gt=0)  # health probe p99 limit

    @field_validator("endpoints")
    @classmethod
    def _paths(cls, value: dict[str, float]) -> dict[str, float]:
        bad = [p for p in value if not p.startswith("/") or any(c.isspace() for c in p)]
        if bad:
            raise ValueError(f"endpoint paths must start with '/' and hold no spaces: {bad}")
        if any(w < 0 for w in value.values()) or not any(w > 0 for w in value.values()):
            raise ValueError(f"endpoint weights must be >= 0 with a positive total: {value}")
        return value


PARAMS: Mapping[str, type[GateParams]] = {
    "redis_slow": RedisSlowParams,
    "redis_down": RedisDownParams,
    "provider_slow": ProviderSlowParams,
    "provider_errors": ProviderErrorsParams,
    "provider_stall": ProviderStallParams,
    "control_plane": ControlPlaneParams,
}


def params_model(fault: str) -> type[GateParams]:
    try:
        return PARAMS[fault]
    except KeyError:
        raise InputError(f"unknown fault {fault!r}; known: {', '.join(PARAMS)}") from None


def fault_params(fault: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` checked for ``fault``, defaults filled in; ValueError naming the problem."""
    model = PARAMS.get(fault)
    if model is None:
        raise ValueError(f"unknown fault {fault!r}; known: {', '.join(PARAMS)}")
    try:
        checked = model.model_validate(dict(params))
    except ValidationError as exc:
        raise ValueError(_explain(fault, model, exc)) from None
    return checked.model_dump(mode="json", exclude_none=True)


def _explain(fault: str, model: type[GateParams], exc: ValidationError) -> str:
    knobs = [name for name in model.model_fields if name not in GateParams.model_fields]
    gates = ", ".join(GateParams.model_fields)
    accepted = f"{', '.join(knobs)} and the thresholds {gates}" if knobs else gates
    problems = []
    for error in exc.errors():
        name = ".".join(str(p) for p in error["loc"]) or "params"
        if error["type"] == "extra_forbidden":
            problems.append(f"unknown param {name!r}")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message} (got {error.get('input')!r})")
    return f"{fault} params: {'; '.join(problems)}; accepted: {accepted}"
