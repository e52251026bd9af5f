"""CPU the rest of the host uses while a run measures: its neighbours.

A CPU-bound gateway's latency moves as soon as something else wants its cores, long
before the host looks busy: on a 2-core host a test suite taking one core adds 13-33 %
to LiteLLM's overhead p99 (docs/benchmarks.md). The load generator's own check only
fires when the host is nearly full, so the pipeline measures the neighbours directly:

    neighbours = host busy CPU - CPU of this run's own processes

over each sampling interval, in percent of one core (like every other CPU series).
Host busy time is user + nice + system + irq + softirq + steal from ``/proc/stat``:
steal is CPU a hypervisor gave to other guests, a neighbour too. The run's own processes
are the observatory process and its descendants, except descendants that carry another
run's marker (a concurrent run on the same host is a neighbour, unless it is measured side
by side with this one: then the two are one measurement). CPU of an own process
that exits between two samples cannot be told apart and counts as a neighbour's, so the
estimate errs on the side of "disturbed".

The samples are stored as resource samples of role ``neighbours``; analysis sets aside
the windows in which neighbours used more than ``thresholds.neighbour_cpu`` cores.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from datetime import datetime
from typing import Final

import psutil

from observatory.domain import ResourceSample
from observatory.markers import RUN_ID_ENV

NEIGHBOURS: Final = "neighbours"

_Key = tuple[int, float]  # (pid, create time): pids are reused


def host_busy_seconds() -> float:
    """CPU seconds the whole host has spent not idle since boot, over all cores."""
    times = psutil.cpu_times()
    busy = times.user + times.nice + times.system
    for extra in ("irq", "softirq", "steal"):
        busy += getattr(times, extra, 0.0)
    return float(busy)


class NeighbourProbe:
    """A resource probe whose only number is the CPU the host's other processes used."""

    role = NEIGHBOURS

    def __init__(self, run_id: int | None = None, together: Collection[int] = ()) -> None:
        self._run_id = None if run_id is None else str(run_id)
        self._together = {str(other) for other in together}
        self._foreign: dict[_Key, bool] = {}  # descendant -> belongs to another run
        self._own: dict[_Key, float] = {}  # own process -> its CPU seconds at the last sample
        self._last: tuple[float, float] | None = None  # (monotonic, host busy seconds)
        self.sample_cpu()

    def sample(self, at: datetime) -> ResourceSample:
        return ResourceSample(
            at=at,
            role=self.role,
            rss_mb=None,
            uss_mb=None,
            cpu_percent=self.sample_cpu(),
            threads=None,
            fds=None,
            connections=None,
            processes=None,
        )

    def sample_cpu(self) -> float | None:
        """Neighbours' CPU since the previous call, percent of one core (None the first time)."""
        own_now = self._own_cpu()
        now, busy = time.monotonic(), host_busy_seconds()
        previous, self._last = self._last, (now, busy)
        own_before, self._own = self._own, own_now
        if previous is None or now <= previous[0]:
            return None
        own_used = sum(cpu - own_before.get(key, 0.0) for key, cpu in own_now.items())
        neighbours = (busy - previous[1]) - own_used
        return max(0.0, neighbours) / (now - previous[0]) * 100.0

    def _own_cpu(self) -> dict[_Key, float]:
        me = psutil.Process()
        found: dict[_Key, float] = {}
        seen: set[_Key] = set()
        for proc in [me, *me.children(recursive=True)]:
            try:
                key = (proc.pid, proc.create_time())
                seen.add(key)
                if proc is not me and self._is_foreign(key, proc):
                    continue
                times = proc.cpu_times()
            except psutil.Error:
                continue
            found[key] = times.user + times.system
        self._foreign = {key: v for key, v in self._foreign.items() if key in seen}
        return found

    def _is_foreign(self, key: _Key, proc: psutil.Process) -> bool:
        if key not in self._foreign:
            try:
                marker = proc.environ().get(RUN_ID_ENV)
            except psutil.Error:
                marker = None
            mine = (
                self._run_id is None
                or not marker
                or marker == self._run_id
                or marker in self._together
            )
            self._foreign[key] = not mine
        return self._foreign[key]
