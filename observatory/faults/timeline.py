"""Checks on a scenario's fault timeline, run when the configuration is loaded.

A phase is judged against the calm before it and the recovery after it, so phases must
start after the warm-up, end within the run and never overlap (two faults at once on one
fault point would have no clean "before" or "after"; the Redis proxy has one mode at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from observatory.durations import format_duration


class Phase(Protocol):
    @property
    def at(self) -> float: ...
    @property
    def fault(self) -> str: ...
    @property
    def duration(self) -> float: ...


def check_timeline(phases: Sequence[Phase], duration: float, warmup: float) -> None:
    """Raise ValueError naming the first phase (``phases[i]``) that does not fit."""
    previous: tuple[int, Phase] | None = None
    for index, phase in sorted(enumerate(phases), key=lambda item: item[1].at):
        label = f"phases[{index}] ({phase.fault} at {format_duration(phase.at)})"
        end = phase.at + phase.duration
        if phase.at < warmup:
            raise ValueError(
                f"{label} starts during the warm-up ({format_duration(warmup)}): "
                "the calm before a fault must be measured; set at >= warmup"
            )
        if end > duration:
            raise ValueError(
                f"{label} ends at {format_duration(end)}, after the run's duration "
                f"({format_duration(duration)})"
            )
        if previous is not None and previous[1].at + previous[1].duration > phase.at:
            before = previous[1]
            raise ValueError(
                f"{label} starts before phases[{previous[0]}] ({before.fault}) ends at "
                f"{format_duration(before.at + before.duration)}; phases must not overlap"
            )
        previous = (index, phase)
