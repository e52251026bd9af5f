"""Catastrophic conditions that end a run early, judged on windows as they arrive."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from observatory.domain import Series, Window
from observatory.durations import format_duration
from observatory.faults.names import is_control
from observatory.settings import AbortSettings


class ErrorRateWatch:
    """Ends a run when every window over a sustained span exceeds the error-rate limit.

    Judged per window over all request names (latency series), so one bad request name in a
    mixed profile is diluted as it would be in production; warm-up windows are ignored, and
    so are control-plane requests (``control:*``): under a control_plane phase they are the
    fault itself, not the gateway failing its users.
    """

    def __init__(self, rules: AbortSettings, window_s: float, warmup_end: float) -> None:
        self.rules = rules
        self.window_s = window_s
        self.warmup_end = warmup_end
        self._totals: dict[float, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, windows: Iterable[Window]) -> None:
        for w in windows:
            if w.series == Series.LATENCY and not is_control(w.name):
                totals = self._totals[w.start.timestamp()]
                totals[0] += w.count
                totals[1] += w.failures

    def breach(self) -> str | None:
        """A reason to stop, or None. Needs a full sustained span of consecutive windows."""
        needed = max(1, round(self.rules.sustained / self.window_s))
        starts = sorted(t for t in self._totals if t >= self.warmup_end)
        if len(starts) < needed:
            return None
        recent = starts[-needed:]
        if recent[-1] - recent[0] > (needed - 1) * self.window_s + 1e-6:
            return None  # a gap: not consecutive
        rates = [self._rate(t) for t in recent]
        if all(r is not None and r > self.rules.error_rate for r in rates):
            return (
                f"error rate above {self.rules.error_rate:.0%} for "
                f"{format_duration(self.rules.sustained)} (early abort)"
            )
        return None

    def _rate(self, start: float) -> float | None:
        count, failures = self._totals[start]
        return failures / count if count else None
