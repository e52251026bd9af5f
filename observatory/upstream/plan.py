"""What the mock does with one request, drawn up front: delays and injected faults.

Two seeded generators keep the draws reproducible and independent: changing the
latency model does not change which requests fail, and vice versa. Requests are
planned in arrival order on one event loop, so the same seed and the same request
sequence give the same plans.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

from observatory.settings import FaultKnobs, LatencyModel, UpstreamSettings


class Outcome(enum.Enum):
    OK = "ok"
    ERROR = "error"
    RESET = "reset"


@dataclass(frozen=True, slots=True)
class RequestPlan:
    """Seconds to wait and what to answer. ``first`` is the base delay or, for a stream,
    the time from the headers to the first content chunk."""

    outcome: Outcome
    status: int
    stall: float
    added: float
    first: float
    chunk_delay: float

    @property
    def before_headers(self) -> float:
        """Stall and added latency: nothing at all is sent meanwhile."""
        return self.stall + self.added

    def stream_total(self, chunks: int) -> float:
        """Planned service time of a stream of ``chunks`` content chunks."""
        return self.before_headers + self.first + self.chunk_delay * (chunks - 1)


def draw_delay(model: LatencyModel, mean: float, rng: random.Random) -> float:
    """One delay with ``model``'s shape and stddev around ``mean``; never negative."""
    if model.distribution == "fixed" or mean <= 0 or model.stddev <= 0:
        return mean
    if model.distribution == "normal":
        return max(0.0, rng.gauss(mean, model.stddev))
    # Lognormal with the given mean and stddev of the delay itself (not of its log).
    sigma2 = math.log1p((model.stddev / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - sigma2 / 2, math.sqrt(sigma2))


class Planner:
    """Draws a RequestPlan per request; its fault knobs can be replaced at run time."""

    def __init__(self, settings: UpstreamSettings) -> None:
        self.settings = settings
        self.faults: FaultKnobs = settings.faults
        seed = settings.seed
        # String seeds are hashed deterministically (random.seed version 2).
        self._fault_rng = random.Random(None if seed is None else f"{seed}:faults")
        self._latency_rng = random.Random(None if seed is None else f"{seed}:latency")

    def plan(self, *, stream: bool) -> RequestPlan:
        knobs = self.faults
        rng = self._fault_rng
        # Always three draws, so one knob's value does not shift another knob's sequence.
        reset, error, stall = rng.random(), rng.random(), rng.random()
        stall_s = knobs.stall if stall < knobs.stall_rate else 0.0
        if reset < knobs.reset_rate:
            return RequestPlan(Outcome.RESET, 0, stall_s, knobs.added_latency, 0.0, 0.0)
        if error < knobs.error_rate:
            status = rng.choice(knobs.error_codes or [500])  # an empty list means 500
            return RequestPlan(Outcome.ERROR, status, stall_s, knobs.added_latency, 0.0, 0.0)
        return RequestPlan(Outcome.OK, 200, stall_s, knobs.added_latency, *self._delays(stream))

    def _delays(self, stream: bool) -> tuple[float, float]:
        latency = self.settings.latency
        if stream:
            ttft = draw_delay(latency, self.settings.stream.ttft, self._latency_rng)
            return ttft, self.settings.stream.chunk_delay
        return draw_delay(latency, latency.mean, self._latency_rng), 0.0
