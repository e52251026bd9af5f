"""Restart safety: expired leases end interrupted once with one alert; orphans are killed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import psutil
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.conclude import conclude_run
from observatory.domain import RunStatus, TriggerSource
from observatory.service.owner import Owner, database_id, host_id, process_start, this_process
from observatory.service.recovery import kill_orphans, recover
from observatory.settings import Settings
from observatory.store import queue, samples
from observatory.store.db import transaction
from observatory.store.tables import AlertRow, Run, WindowRow, utcnow
from observatory.validation import ValidationRequest, plan
from tests.service.conftest import HOST_FP, windows

ELSEWHERE = "otherhost/4242/1700000000/slot0/0123abcdef"


@pytest.fixture
def db(engine: Engine) -> str:
    return database_id(engine)


def _queued_run(sessions: sessionmaker[Session], settings: Settings, tag: str = "v1") -> int:
    request = ValidationRequest(
        build="cand", scenarios=("chat",), source=TriggerSource.API, tag=tag, baseline="none"
    )
    with transaction(sessions) as session:
        return plan(session, settings, request, HOST_FP).run_ids[0]


def _running(sessions: sessionmaker[Session], run_id: int, owner: str, lease_s: float) -> None:
    """A run as a worker leaves it: claimed, running, windows written."""
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        start = utcnow() - timedelta(minutes=5)
        run.status, run.claimed_by, run.started_at = RunStatus.RUNNING, owner, start
        run.heartbeat_at = utcnow() - timedelta(seconds=40)
        run.lease_until = utcnow() + timedelta(seconds=lease_s)
        samples.add_windows(session, run_id, windows(start, 12))


def _state(sessions: sessionmaker[Session], run_id: int) -> tuple[Run, int, int]:
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        count = select(func.count()).select_from(WindowRow).where(WindowRow.run_id == run_id)
        alerts = select(func.count()).select_from(AlertRow).where(AlertRow.run_id == run_id)
        return run, int(session.scalar(count) or 0), int(session.scalar(alerts) or 0)


def test_an_expired_lease_ends_the_run_interrupted_once_with_one_alert_and_a_report(
    sessions: sessionmaker[Session], settings: Settings, db: str
) -> None:
    run_id = _queued_run(sessions, settings)
    _running(sessions, run_id, ELSEWHERE, lease_s=-1)
    results = []

    def recover_once() -> None:
        results.append(recover(settings, sessions, db))

    threads = [threading.Thread(target=recover_once) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.append(recover(settings, sessions, db))
    assert sorted(i for r in results for i in r.interrupted) == [run_id]
    run, kept, alerts = _state(sessions, run_id)
    assert run.status == RunStatus.INTERRUPTED
    assert run.end_reason is not None
    assert run.end_reason.startswith(f"lease expired: the worker stopped ({ELSEWHERE}")
    assert "no heartbeat" in run.end_reason
    assert kept == 12, "the windows written before the stop are kept"
    assert alerts == 1
    page = settings.data_dir / "reports" / "runs" / str(run_id) / "index.html"
    assert page.is_file(), "a partial report is written"
    assert "lease expired" in page.read_text()


def test_a_recovery_that_died_half_way_is_redone_without_a_second_alert(
    sessions: sessionmaker[Session], settings: Settings, db: str
) -> None:
    run_id = _queued_run(sessions, settings)
    _running(sessions, run_id, ELSEWHERE, lease_s=-1)
    # A recoverer took the run, concluded it up to the alert, and died before the status
    # stuck; its own lease then ran out.
    with transaction(sessions) as session:
        queue.expire_leases(session, recoverer="dead-recoverer", lease_s=-1)
    conclude_run(
        run_id,
        settings,
        sessions,
        RunStatus.INTERRUPTED,
        "lease expired: first",
        None,
        owner="dead-recoverer",
    )
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.status = RunStatus.RUNNING
    assert recover(settings, sessions, db).interrupted == (run_id,)
    run, _, alerts = _state(sessions, run_id)
    assert run.status == RunStatus.INTERRUPTED
    assert "dead-recoverer" in (run.end_reason or "")
    assert alerts == 1


def test_a_live_lease_is_left_alone(
    sessions: sessionmaker[Session], settings: Settings, db: str
) -> None:
    run_id = _queued_run(sessions, settings)
    _running(sessions, run_id, ELSEWHERE, lease_s=60)
    assert recover(settings, sessions, db).interrupted == ()
    run, _, alerts = _state(sessions, run_id)
    assert (run.status, alerts) == (RunStatus.RUNNING, 0)


def _dead_owner(db: str) -> Owner:
    """The worker id of a process of this host that has ended."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    started = process_start(child.pid)
    child.wait()
    return Owner(host_id(), child.pid, started, "slot0", db)


def test_a_run_of_a_dead_local_worker_is_taken_back_before_its_lease_ends(
    sessions: sessionmaker[Session], settings: Settings, db: str
) -> None:
    gone = _dead_owner(db)
    assert gone.is_dead()
    assert not this_process("slot0", db).is_dead()
    run_id = _queued_run(sessions, settings)
    _running(sessions, run_id, str(gone), lease_s=600)
    assert recover(settings, sessions, db).interrupted == (run_id,)
    run, _, _ = _state(sessions, run_id)
    assert run.status == RunStatus.INTERRUPTED
    assert "its process is gone" in (run.end_reason or "")


SLEEPER = """
import subprocess, sys, time
# a grandchild without the marker: only the process-group kill reaches it
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], env={})
time.sleep(120)
"""


def _marked(run_id: int, owner: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OBSERVATORY_RUN_ID": str(run_id), "OBSERVATORY_OWNER": owner}
    return subprocess.Popen([sys.executable, "-c", SLEEPER], env=env, start_new_session=True)


@pytest.fixture
def reaped() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        proc.wait(10)


def _tree(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = psutil.Process(proc.pid).children(recursive=True)
        if children:
            return [psutil.Process(proc.pid), *children]
        time.sleep(0.05)
    raise AssertionError("the sleeper did not start its grandchild")


def test_orphaned_processes_are_killed_and_live_ones_kept(
    sessions: sessionmaker[Session],
    settings: Settings,
    db: str,
    reaped: list[subprocess.Popen[bytes]],
) -> None:
    me = str(this_process("slot0", db))
    other_db = str(this_process("slot0", "ffffffffff"))
    ended, held, stolen = (_queued_run(sessions, settings, tag) for tag in ("a", "b", "c"))
    _running(sessions, held, me, lease_s=600)
    _running(sessions, stolen, "someone-else", lease_s=600)
    with transaction(sessions) as session:
        run = session.get(Run, ended)
        assert run is not None
        run.status = RunStatus.DONE
    orphan, kept, other = _marked(ended, me), _marked(held, me), _marked(stolen, me)
    left = _marked(held, str(_dead_owner(db)))  # its service was killed -9
    foreign = _marked(ended, other_db)  # another database's run with the same id
    cli = _marked(ended, "cli:somehost")  # not a service worker: never touched
    reaped.extend([orphan, kept, other, left, foreign, cli])
    doomed = _tree(orphan) + _tree(other) + _tree(left)
    survivors = _tree(kept) + _tree(foreign) + _tree(cli)
    killed = kill_orphans(sessions, db)
    assert sorted(killed) == sorted([orphan.pid, other.pid, left.pid])
    _gone, alive = psutil.wait_procs(doomed, timeout=10)
    assert alive == [], "the orphans and their unmarked grandchildren are gone"
    assert all(p.is_running() for p in survivors)
    assert orphan.wait(5) is not None
