"""The load generator watches itself: CPU of its own process and of the host.

A Locust process is one gevent loop on one core; once it uses most of that core, its
timers fire late and its measured latencies include its own queueing, so the windows it
measured say more about the generator than about the gateway. Likewise when the whole
host is busy (the gateway, the upstream and the generator fight for the same cores).
Such windows are flagged; analysis then calls the run inconclusive instead of blaming
the gateway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

import psutil

LOADGEN_CPU: Final = "loadgen_cpu"
HOST_CPU: Final = "host_cpu"
HOST_BUSY_FLOOR: Final = 0.95  # the host counts as busy above this share of all its cores


@dataclass(frozen=True, slots=True)
class CpuSample:
    since: float  # epoch seconds
    until: float
    process: float  # share of one core used by this process (1.0 = a full core)
    host: float | None  # share of all the host's cores in use; None when not measured

    def reasons(self, threshold: float) -> list[str]:
        """Why the interval counts as saturated (empty when it does not)."""
        out = []
        if self.process >= threshold:
            out.append(LOADGEN_CPU)
        if self.host is not None and self.host >= max(threshold, HOST_BUSY_FLOOR):
            out.append(HOST_CPU)
        return out


class CpuMeter:
    """CPU used between successive ``sample`` calls."""

    def __init__(self, *, host: bool = False) -> None:
        self._process = psutil.Process()
        self._host = host
        self._process.cpu_percent(None)
        if host:
            psutil.cpu_percent(None)
        self._since = time.time()

    def sample(self) -> CpuSample:
        now = time.time()
        process = self._process.cpu_percent(None) / 100.0
        host = psutil.cpu_percent(None) / 100.0 if self._host else None
        since, self._since = self._since, now
        return CpuSample(since=since, until=now, process=process, host=host)
