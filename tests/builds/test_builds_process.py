"""Process supervision on real children: rotated logs, tree teardown, exit details."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from builds_helpers import assert_all_gone

from observatory.builds.process import SupervisedProcess

CHATTY = "import sys\nfor i in range(4000):\n    print(f'line {i:05d} ' + 'x' * 40)\n"


def test_log_is_size_capped_and_rotated(tmp_path: Path) -> None:
    log = tmp_path / "gw.log"
    proc = SupervisedProcess(
        [sys.executable, "-c", CHATTY], env=dict(os.environ), log_path=log,
        max_bytes=20_000, backups=2,
    )  # fmt: skip
    proc.start()
    assert proc.wait_exit(30)
    proc.stop()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["gw.log", "gw.log.1", "gw.log.2"]
    assert all((tmp_path / f).stat().st_size <= 20_000 for f in files)
    assert log.read_text().splitlines()[-1].startswith("line 03999 ")
    assert proc.exit_info() is not None  # it ended by itself, with exit code 0
    assert proc.exit_info().exit_code == 0  # type: ignore[union-attr]
    assert "line 03999" in proc.log_tail(1)


def test_stop_kills_a_tree_that_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "cmd = [sys.executable, '-c', 'import os, time; os.setsid(); time.sleep(600)']\n"
        "subprocess.Popen(cmd)\n"  # escapes the process group: only the tree walk finds it
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = SupervisedProcess(
        [sys.executable, "-c", code], env=dict(os.environ), log_path=tmp_path / "log"
    )
    proc.start()
    deadline = time.monotonic() + 15
    while len(proc.tree()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    pids = [p.pid for p in proc.tree()]
    assert len(pids) == 2
    while os.getpgid(pids[1]) == pids[0] and time.monotonic() < deadline:
        time.sleep(0.05)  # the grandchild has not called setsid() yet
    assert os.getpgid(pids[1]) != pids[0], "the grandchild left the group"
    started = time.monotonic()
    proc.stop(grace=0.5)
    assert time.monotonic() - started < 8
    assert_all_gone(pids)
    assert proc.exit_info() is None, "a requested stop is not a crash"
    assert not proc.running
