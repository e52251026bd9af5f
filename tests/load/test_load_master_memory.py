"""The master keeps Locust's own unbounded bookkeeping to its last minutes.

Runs in a child process: importing Locust monkey-patches the interpreter (gevent), which
the test process must never be.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

CHECK = textwrap.dedent(
    """
    import sys, time
    from locust.env import Environment
    from observatory.load.config import LoadConfig
    from observatory.load.master import (
        LOCUST_HISTORY_ROWS, LOCUST_PER_SECOND_KEPT_S, MasterState,
    )
    from observatory.load.window import WindowGrid

    environment = Environment()
    runner = environment.create_local_runner()
    now = int(time.time())
    config = LoadConfig(
        run_start=now, duration_s=60.0, window_s=10.0, profile={}, run_dir=sys.argv[1]
    )
    master = MasterState(environment, config, WindowGrid(now, 10.0, 60.0))
    stats = runner.stats
    for second in range(now - 3600, now + 1):  # an hour of one request per second
        stats.get("chat", "POST").num_reqs_per_sec[second] = 1
        stats.total.num_fail_per_sec[second] = 1
    stats.history.extend({"row": i} for i in range(LOCUST_HISTORY_ROWS + 500))
    master.trim_locust_history()
    kept = stats.get("chat", "POST").num_reqs_per_sec
    assert LOCUST_PER_SECOND_KEPT_S <= 300  # a few minutes, not the run
    assert len(kept) == LOCUST_PER_SECOND_KEPT_S + 1, len(kept)
    assert now in kept  # the last seconds, which Locust's current RPS reads, stay
    assert len(stats.total.num_fail_per_sec) == LOCUST_PER_SECOND_KEPT_S + 1
    assert LOCUST_HISTORY_ROWS <= 120
    assert len(stats.history) == LOCUST_HISTORY_ROWS, len(stats.history)
    assert stats.history[-1] == {"row": LOCUST_HISTORY_ROWS + 499}
    runner.quit()
    print("trimmed")
    """
)


def test_history_and_per_second_counts_are_trimmed(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "trimmed"
