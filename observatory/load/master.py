"""The master's duties: merge worker deltas, write completed windows and the live status.

Windows go to the spool the moment they complete (see collector and spool); the status
file is rewritten every few seconds for the run pipeline's progress line. The master also
watches its own CPU and the host's, flagging the windows it overlaps when either is busy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, MasterRunner

from observatory.load.collector import Collector
from observatory.load.config import LoadConfig
from observatory.load.histogram import collect_cycles
from observatory.load.saturation import CpuMeter
from observatory.load.spool import SPOOL_NAME, SpoolWriter
from observatory.load.status import STATUS_NAME, write_status
from observatory.load.window import WindowGrid

STATUS_INTERVAL_S = 2.0
# Locust appends a row to its chart history every 5 s, forever (~1.4 MB/hour), and the
# master's stats entries count requests per second, forever (one key per name and
# second); only its web UI and HTML report read the history and only its "current RPS"
# (the last 12 s) the per-second counts. No observatory run uses either.
LOCUST_HISTORY_ROWS = 60
LOCUST_PER_SECOND_KEPT_S = 60


class MasterState:
    """The master's half: merges deltas, writes spool and status, drains at the deadline."""

    def __init__(self, environment: Environment, config: LoadConfig, grid: WindowGrid) -> None:
        self.environment = environment
        self.config = config
        run_dir = Path(config.run_dir or ".")
        grace = max(config.window_s, 2 * WORKER_REPORT_INTERVAL + 1.0)
        self.collector = Collector(grid, grace_s=grace)
        self.spool = SpoolWriter(run_dir / SPOOL_NAME)
        self.status_path = run_dir / STATUS_NAME
        self.meter = CpuMeter(host=True)
        self.finals: set[str] = set()
        self.in_flight: dict[str, int] = {}
        self.state = "starting"
        self.drain_started = False
        self.drained = False
        self._last_status = 0.0

    def rebase(self, config: LoadConfig, grid: WindowGrid) -> None:
        """The run's windows start at ``config.run_start`` (nothing was merged yet)."""
        self.config = config
        self.collector = Collector(grid, self.collector.grace_s)

    def absorb(self, client_id: str, payload: dict[str, Any]) -> None:
        self.collector.merge(payload)
        for since, until, reason in payload.get("saturation", ()):
            self.collector.mark_saturated(float(since), float(until), str(reason))
        self.in_flight[client_id] = int(payload.get("in_flight", 0))

    def write_due(self, now: float) -> None:
        windows = self.collector.due(now)
        for window in windows:
            self.spool.append(window)
        if windows:
            collect_cycles()

    def flush(self) -> None:
        for window in self.collector.flush_all():
            self.spool.append(window)

    def trim_locust_history(self) -> None:
        """Keep Locust's own history to its last few minutes (memory stays flat)."""
        runner = self.environment.runner
        if runner is None:
            return
        history = runner.stats.history
        if len(history) > LOCUST_HISTORY_ROWS:
            del history[: len(history) - LOCUST_HISTORY_ROWS]
        oldest = int(time.time()) - LOCUST_PER_SECOND_KEPT_S
        for entry in [runner.stats.total, *runner.stats.entries.values()]:
            for counts in (entry.num_reqs_per_sec, entry.num_fail_per_sec):
                for second in [s for s in counts if s < oldest]:
                    del counts[second]

    def watch_cpu(self) -> None:
        sample = self.meter.sample()
        for reason in sample.reasons(self.config.saturation_cpu):
            self.collector.mark_saturated(sample.since, sample.until, reason)

    def write_status(self, now: float, *, force: bool = False) -> None:
        if not force and now - self._last_status < STATUS_INTERVAL_S:
            return
        self._last_status = now
        write_status(self.status_path, self.status(now))

    def status(self, now: float) -> dict[str, Any]:
        config, totals = self.config, self.collector.totals
        latest = self.collector.latest(now)
        runner = self.environment.runner
        elapsed = max(0.0, now - config.run_start) if config.run_start > 0 else 0.0
        rps = error_rate = p99 = 0.0
        if latest is not None and latest.requests:
            rps = latest.requests / latest.length_s if latest.length_s else 0.0
            error_rate = latest.failures / latest.requests
            p99 = latest.p99_ms
        return {
            "state": self.state,
            "pid": os.getpid(),
            "run_start": config.run_start,
            "duration_s": config.duration_s,
            "elapsed_s": round(elapsed, 3),
            "remaining_s": round(max(0.0, config.deadline - now), 3)
            if config.run_start > 0
            else config.duration_s,
            "requests": totals.requests,
            "failures": totals.failures,
            "rps": round(rps, 3),
            "p99_ms": p99,
            "error_rate": round(error_rate, 6),
            "in_flight": sum(self.in_flight.values()),
            "users": runner.user_count if runner else 0,
            "workers": runner.worker_count if isinstance(runner, MasterRunner) else 1,
            "saturated": bool(latest and latest.saturated),
            "windows_written": totals.windows_written,
            "late_samples": totals.late_samples,
            "lost_samples": totals.lost_samples,
            "updated_at": now,
        }
