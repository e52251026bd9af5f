"""The neighbour probe: host CPU minus the run's own processes, measured on real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime

from observatory.markers import RUN_ID_ENV
from observatory.neighbours import NEIGHBOURS, NeighbourProbe, host_busy_seconds

BURN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def _burner(run_id: str, seconds: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, RUN_ID_ENV: run_id}
    return subprocess.Popen([sys.executable, "-c", BURN.format(seconds=seconds)], env=env)


def test_host_busy_time_grows_while_a_process_burns_cpu() -> None:
    before = host_busy_seconds()
    _burner("0", 0.5).wait()
    assert host_busy_seconds() - before >= 0.3


def test_a_process_of_another_run_is_a_neighbour_ours_is_not() -> None:
    child = _burner("1", 4.0)
    try:
        time.sleep(0.5)  # started and visible to both probes
        ours, theirs = NeighbourProbe(run_id=1), NeighbourProbe(run_id=2)
        time.sleep(2.0)
        mine, other = ours.sample_cpu(), theirs.sample_cpu()
    finally:
        child.wait()
    assert mine is not None
    assert other is not None
    # Both probes saw the same host over the same 2 s; only run 2's counts the child, which
    # kept about one core busy (at least half of one on a crowded 2-core host).
    assert other - mine > 50.0, (mine, other)


def test_a_process_of_a_run_measured_side_by_side_is_not_a_neighbour() -> None:
    child = _burner("1", 4.0)
    try:
        time.sleep(0.5)
        together, alone = NeighbourProbe(2, together=(1, 2)), NeighbourProbe(run_id=2)
        time.sleep(2.0)
        mine, other = together.sample_cpu(), alone.sample_cpu()
    finally:
        child.wait()
    assert mine is not None
    assert other is not None
    assert other - mine > 50.0, (mine, other)  # run 1's burner counts only for the lone run


def test_a_sample_reports_only_cpu_under_the_neighbours_role() -> None:
    probe = NeighbourProbe()
    time.sleep(0.2)
    sample = probe.sample(datetime.now(UTC))
    assert sample.role == NEIGHBOURS
    assert sample.cpu_percent is not None
    assert sample.cpu_percent >= 0.0
    assert sample.rss_mb is None
    assert sample.uss_mb is None
    assert sample.processes is None
