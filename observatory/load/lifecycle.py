"""When each deployment is in use, and how a client walks away: the lifecycle plan.

A plan says, at any second of a run, which models a scenario may draw (deployments that
join late, deployments that go quiet for longer than common cache TTLs and come back),
which of many distinct deployments the next request goes to (so caches holding a few
hundred entries evict), and whether a request is sent to completion, abandoned after a few
streamed chunks, cancelled at a client timeout or kept long. Pure: the clock is passed in.

Params (all optional; durations as seconds or "90s", "10m"):
  models        {name: weight} ({"gpt-4o-mini": 0.6, "gpt-4o": 0.4})
  start_after   {name: duration} when a model joins ({"gpt-4o": "30s"})
  idle          {name: {every: duration, for: duration}}: quiet for ``for`` at the end of
                every ``every`` after joining ({"gpt-4o": {every: "30m", for: "11m"}})
  fleet         int, distinct deployments ``fleet-001``... drawn in turn (250; 0: none)
  fleet_share   share of requests sent to the fleet (0.2)
  abandon_share share of streams closed by the client after ``abandon_after`` chunks
                (0.1; 3)
  cancel_share  share of requests cancelled at ``cancel_after`` (0.05; "200ms": below the
                time a stream takes, so the client hangs up while the gateway works)
  long_share    share of streams kept long: ``long_max_tokens`` tokens (0.05; 2000)
  stream_share  share of requests streamed (0.5)
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any, Final

from observatory.durations import parse_duration
from observatory.errors import InputError

FLEET_PREFIX: Final = "fleet-"
FLEET_NAME: Final = "fleet"  # one request name for the whole fleet, not one per deployment
DEFAULT_MODELS: Final = {"gpt-4o-mini": 0.6, "gpt-4o": 0.4}
DEFAULT_START_AFTER: Final = {"gpt-4o": "30s"}
DEFAULT_IDLE: Final = {"gpt-4o": {"every": "30m", "for": "11m"}}


def fleet_names(size: int) -> list[str]:
    """The fleet's deployment names: ``fleet-001`` ... (what a gateway must serve)."""
    return [f"{FLEET_PREFIX}{i:03d}" for i in range(1, size + 1)]


@dataclass(frozen=True)
class Quiet:
    """A model goes quiet for ``length`` s at the end of every ``every`` s after joining."""

    every: float
    length: float

    def quiet_at(self, since_join: float) -> bool:
        return since_join % self.every >= self.every - self.length


@dataclass(frozen=True)
class Action:
    """What one request does: its model, request name and how the client treats it."""

    model: str
    name: str | None  # None: the helper's own per-model name
    stream: bool
    abandon_after: int | None = None
    cancel_after: float | None = None
    max_tokens: int | None = None


@dataclass(frozen=True)
class Plan:
    models: dict[str, float]
    start_after: dict[str, float]
    idle: dict[str, Quiet]
    fleet: int
    fleet_share: float
    abandon_share: float
    abandon_after: int
    cancel_share: float
    cancel_after: float
    long_share: float
    long_max_tokens: int
    stream_share: float

    def active(self, model: str, elapsed: float) -> bool:
        """Whether ``model`` takes traffic ``elapsed`` s into the run."""
        since_join = elapsed - self.start_after.get(model, 0.0)
        if since_join < 0:
            return False
        quiet = self.idle.get(model)
        return quiet is None or not quiet.quiet_at(since_join)

    def model_weights(self, elapsed: float) -> dict[str, float]:
        """The models in use at ``elapsed``; the earliest joiner if none is."""
        weights = {m: w for m, w in self.models.items() if self.active(m, elapsed)}
        if weights:
            return weights
        first = min(self.models, key=lambda m: self.start_after.get(m, 0.0))
        return {first: self.models[first]}


class Walker:
    """Draws each request's action from a plan (one per user; ``offset`` spreads users)."""

    def __init__(self, plan: Plan, rng: random.Random, offset: int = 0) -> None:
        self.plan = plan
        self.rng = rng
        self._fleet = itertools.count(offset)

    def next(self, elapsed: float) -> Action:
        plan, rng = self.plan, self.rng
        stream = rng.random() < plan.stream_share
        if plan.fleet and rng.random() < plan.fleet_share:
            index = next(self._fleet) % plan.fleet
            model, name = fleet_names(plan.fleet)[index], FLEET_NAME
        else:
            model, name = _draw(plan.model_weights(elapsed), rng), None
        roll = rng.random()
        if roll < plan.cancel_share:
            return Action(model, name, stream, cancel_after=plan.cancel_after)
        roll -= plan.cancel_share
        if stream and roll < plan.abandon_share:
            return Action(model, name, stream, abandon_after=plan.abandon_after)
        roll -= plan.abandon_share
        if stream and roll < plan.long_share:
            return Action(model, name, stream, max_tokens=plan.long_max_tokens)
        return Action(model, name, stream)


def _draw(weights: dict[str, float], rng: random.Random) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def plan_from(values: dict[str, Any]) -> Plan:
    """The plan of these scenario params; InputError naming a bad one."""
    models = _weights(values.get("models", DEFAULT_MODELS))
    start_after = {
        str(m): _seconds(f"start_after.{m}", d)
        for m, d in _mapping("start_after", values.get("start_after", DEFAULT_START_AFTER)).items()
    }
    idle = {
        str(m): _quiet(str(m), q)
        for m, q in _mapping("idle", values.get("idle", DEFAULT_IDLE)).items()
    }
    unknown = sorted((set(start_after) | set(idle)) - set(models))
    if unknown:
        raise InputError(f"scenario params start_after/idle name unknown model(s) {unknown}")
    return Plan(
        models=models,
        start_after=start_after,
        idle=idle,
        fleet=_count(values, "fleet", 250, 0, 999),
        fleet_share=_share(values, "fleet_share", 0.2),
        abandon_share=_share(values, "abandon_share", 0.1),
        abandon_after=_count(values, "abandon_after", 3, 1, 10_000),
        cancel_share=_share(values, "cancel_share", 0.05),
        cancel_after=_seconds("cancel_after", values.get("cancel_after", "200ms")),
        long_share=_share(values, "long_share", 0.05),
        long_max_tokens=_count(values, "long_max_tokens", 2000, 1, 1_000_000),
        stream_share=_share(values, "stream_share", 0.5),
    )


def _mapping(name: str, value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"scenario param {name!r}: expected a mapping, got {value!r}")
    return value


def _weights(value: object) -> dict[str, float]:
    weights = _mapping("models", value)
    good = all(
        isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights.values()
    )
    if not weights or not good or not any(weights.values()):
        raise InputError(f"scenario param 'models': weights must be >= 0, not all 0; got {weights}")
    return {str(m): float(w) for m, w in weights.items()}


def _quiet(model: str, value: object) -> Quiet:
    spec = _mapping(f"idle.{model}", value)
    if set(spec) != {"every", "for"}:
        raise InputError(f"scenario param 'idle.{model}': expected {{every: ..., for: ...}}")
    every = _seconds(f"idle.{model}.every", spec["every"])
    length = _seconds(f"idle.{model}.for", spec["for"])
    if not 0 < length < every:
        raise InputError(f"scenario param 'idle.{model}': 'for' must be > 0 and < 'every'")
    return Quiet(every, length)


def _seconds(name: str, value: object) -> float:
    try:
        return parse_duration(value)
    except InputError as exc:
        raise InputError(f"scenario param {name!r}: {exc}") from None


def _share(values: dict[str, Any], name: str, default: float) -> float:
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InputError(f"scenario param {name!r}: expected a share 0..1, got {value!r}")
    return float(value)


def _count(values: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = values.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"scenario param {name!r}: expected an int {low}..{high}, got {value!r}")
    return value
