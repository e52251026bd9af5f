"""Runs measured side by side: two gateways on one host, loaded over the same seconds.

Separately started runs on a VM measure different machines: the host's speed moves by
tens of percent within an hour with nothing else running (docs/benchmarks.md). A baseline
run beside its candidate meets the same host at every moment, and the analysis compares
the two window by window (analysis.bootstrap.paired), so what the host did to both cancels.

Each run still has its own mock upstream, gateway, load generator and sampler, in its own
thread; they only share the moment load starts, so both window grids line up exactly.
"""

from __future__ import annotations

import threading
from datetime import datetime

from observatory.errors import ObservatoryError
from observatory.store.tables import utcnow

START_TIMEOUT_S = 1800.0  # one side may still be installing its gateway


class Together:
    """The start line of runs measured side by side."""

    def __init__(self, run_ids: tuple[int, ...], timeout_s: float = START_TIMEOUT_S) -> None:
        self.run_ids = run_ids
        self._barrier = threading.Barrier(len(run_ids), action=self._stamp, timeout=timeout_s)
        self._start: datetime | None = None

    def _stamp(self) -> None:
        self._start = utcnow()

    def start(self) -> datetime:
        """Wait until every run is ready to load; all get the same start."""
        try:
            self._barrier.wait()
        except threading.BrokenBarrierError:
            raise ObservatoryError(
                "the run measured beside this one did not get ready; neither starts"
            ) from None
        assert self._start is not None
        return self._start

    def abandon(self) -> None:
        """This run will not reach the start (or has passed it): release the others."""
        self._barrier.abort()
