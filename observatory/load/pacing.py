"""Open-model pacing: intended send times that do not wait for the gateway.

Each load process owns one schedule of intended send times (constant spacing or Poisson
arrivals) at its share of the run's rate. Its users are the in-flight slots: a free user
takes the next intended time and sleeps until it, so sends leave on schedule whatever the
gateway does. When every slot is busy (the gateway is slow or stalled) intended times
pass without a taker; the next free user takes the oldest one and sends at once, *late*,
and its latency still counts from the intended time, so a stall shows in full instead of
being hidden by a generator that politely waited (coordinated omission). Intended times
more than ``drop_after_s`` in the past are *dropped*: counted, never sent, so a long stall
is not followed by a thundering herd of stale sends.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Ticket:
    intended: float  # epoch seconds
    dropped: int  # intended sends skipped (too old) before this one
    dropped_lateness_s: list[float] = field(default_factory=list)


class ArrivalSchedule:
    """Intended send times at a (possibly changing) rate, constant or Poisson."""

    def __init__(self, arrival: str, drop_after_s: float, rng: random.Random | None = None):
        if arrival not in ("constant", "poisson"):
            raise ValueError(f"arrival {arrival!r}; accepted: constant, poisson")
        self.arrival = arrival
        self.drop_after_s = drop_after_s
        self._rng = rng or random.Random()
        self._next: float | None = None

    def _gap(self, rate: float) -> float:
        if self.arrival == "constant":
            return 1.0 / rate
        return self._rng.expovariate(rate)

    def take(self, now: float, rate: float) -> Ticket:
        """The next intended send time for a free slot at ``now`` (rate in sends/s)."""
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate!r}")
        if self._next is None:
            # A random phase keeps processes with constant spacing from sending in lockstep.
            self._next = now + self._rng.random() * self._gap(rate)
        cutoff = now - self.drop_after_s
        ticket = Ticket(intended=0.0, dropped=0)
        while self._next < cutoff:
            ticket.dropped += 1
            ticket.dropped_lateness_s.append(now - self._next)
            self._next += self._gap(rate)
        ticket.intended = self._next
        self._next += self._gap(rate)
        return ticket
