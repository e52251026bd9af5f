"""Races between workers, recovery, cancel and the CLI on one database (SQLite and Postgres).

Each test builds the interleaving that used to lose a run or an alert, with real sessions
and threads; every state change must be a conditional update that one side loses cleanly.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.conclude import conclude_run
from observatory.domain import RunStatus, TriggerSource, Window
from observatory.errors import StoreError
from observatory.ingest import SpoolIngest
from observatory.load.spool import read_spool
from observatory.service.owner import Owner, database_id, this_process
from observatory.service.recovery import recover
from observatory.settings import Settings
from observatory.store import queue
from observatory.store import runs as store_runs
from observatory.store.db import make_engine, session_factory, transaction
from observatory.store.tables import AlertRow, Run, WindowRow, utcnow
from observatory.validation import ValidationRequest, plan
from tests.load.test_load_spool import _write
from tests.service.conftest import HOST_FP, Server


def _queued(sessions: sessionmaker[Session], settings: Settings, tag: str = "v1") -> int:
    request = ValidationRequest(
        build="cand", scenarios=("chat",), source=TriggerSource.API, tag=tag, baseline="none"
    )
    with transaction(sessions) as session:
        return plan(session, settings, request, HOST_FP).run_ids[0]


def _claim(sessions: sessionmaker[Session], worker: str = "w") -> int | None:
    with transaction(sessions) as session:
        run = queue.claim_next(session, worker, 60.0, host_fingerprint=HOST_FP)
        return None if run is None else run.id


def _run(sessions: sessionmaker[Session], run_id: int) -> Run:
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def _alerts(sessions: sessionmaker[Session], run_id: int) -> int:
    with transaction(sessions) as session:
        query = select(func.count()).select_from(AlertRow).where(AlertRow.run_id == run_id)
        return int(session.scalar(query) or 0)


def test_a_cancel_racing_a_claim_never_aborts_a_claimed_run(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    run_id = _queued(sessions, settings)
    canceller = sessions()  # the API's transaction, still open while a worker claims
    message = store_runs.request_cancel(canceller, run_id)
    claimed: list[int | None] = []
    worker = threading.Thread(target=lambda: claimed.append(_claim(sessions)))
    worker.start()
    worker.join(1)  # a claim may wait for the cancel's write lock (SQLite)
    canceller.commit()
    canceller.close()
    worker.join(30)
    run = _run(sessions, run_id)
    assert not (run.status == RunStatus.ABORTED and run.claimed_by), (
        f"cancel overwrote a claim: {run.status} held by {run.claimed_by}"
    )
    if claimed == [run_id]:  # the claim won: the cancel is a request to its worker
        assert (run.status, run.cancel_requested) == (RunStatus.PROVISIONING, True), message
    else:
        assert (run.status, run.claimed_by) == (RunStatus.ABORTED, None), message


def test_cancel_of_a_claimed_run_asks_its_worker(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    run_id = _queued(sessions, settings)
    assert _claim(sessions) == run_id
    with transaction(sessions) as session:
        message = store_runs.request_cancel(session, run_id)
    run = _run(sessions, run_id)
    assert (run.status, run.cancel_requested, run.claimed_by) == ("provisioning", True, "w")
    assert "its worker stops it" in message


def test_a_worker_with_a_slow_clock_keeps_its_lease(
    sessions: sessionmaker[Session], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leases are times on the database's clock, not on each host's own."""
    run_id = _queued(sessions, settings)
    slow = utcnow() - timedelta(minutes=10)
    with monkeypatch.context() as patched:  # this host's clock is ten minutes behind
        for module in ("observatory.store.queue", "observatory.store.runs"):
            patched.setattr(f"{module}.utcnow", lambda: slow, raising=False)
        assert _claim(sessions) == run_id
        with transaction(sessions) as session:
            assert queue.renew_lease(session, run_id, "w", 60.0)
    with transaction(sessions) as session:  # a recovering host with a right clock
        assert queue.expire_leases(session, recoverer="r") == []
    run = _run(sessions, run_id)
    assert run.lease_until is not None
    assert run.lease_until > utcnow() + timedelta(seconds=30)


def test_an_aborted_run_ends_with_its_alert_even_if_the_worker_dies_in_between(
    engine: Engine,
    sessions: sessionmaker[Session],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = _queued(sessions, settings)
    assert _claim(sessions, worker="w") == run_id

    class Killed(BaseException):
        """The worker's process ends here (kill -9 between two writes)."""

    def die(*_: Any) -> None:
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr("observatory.conclude.alerts.enqueue", die)
        with pytest.raises(Killed):
            conclude_run(
                run_id, settings, sessions, RunStatus.ABORTED, "cancelled", None, owner="w"
            )
    with transaction(sessions) as session:  # its lease runs out
        session.get(Run, run_id).lease_until = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    db = database_id(engine)
    recover(settings, sessions, db)
    recover(settings, sessions, db)
    run = _run(sessions, run_id)
    assert RunStatus(run.status).finished, f"run left {run.status}"
    assert run.end_reason
    assert _alerts(sessions, run_id) == 1, "the alert of an ended run is never lost"


def test_a_conclusion_by_a_worker_that_lost_the_run_changes_nothing(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    run_id = _queued(sessions, settings)
    assert _claim(sessions, worker="w") == run_id
    with transaction(sessions) as session:
        assert queue.expire_leases(session, recoverer="r", dead_owners={"w"})
    outcome = conclude_run(run_id, settings, sessions, RunStatus.ABORTED, "late", None, owner="w")
    assert "r" in outcome.reason
    run = _run(sessions, run_id)
    assert (run.status, run.claimed_by, run.end_reason) == (RunStatus.PROVISIONING, "r", None)
    assert _alerts(sessions, run_id) == 0


def test_cli_held_runs_are_not_claimed_by_a_worker(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings
) -> None:
    run_id = _queued(sessions, settings)
    with transaction(sessions) as session:
        assert queue.hold(session, [run_id], "cli-owner", 60.0) == [run_id]
    assert _claim(sessions) is None, "a run the CLI planned is the CLI's"
    run = _run(sessions, run_id)
    assert (run.status, run.claimed_by) == (RunStatus.QUEUED, "cli-owner")
    with transaction(sessions) as session:  # the CLI died before it began the run
        session.get(Run, run_id).lease_until = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
    recover(settings, sessions, database_id(engine))
    run = _run(sessions, run_id)
    assert run.status == RunStatus.INTERRUPTED
    assert "cli-owner" in (run.end_reason or "")


def _ended_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_namesake_host_is_not_this_host(engine: Engine) -> None:
    """Two hosts with one hostname: neither takes the other's processes for its own."""
    db = database_id(engine)
    namesake = Owner.parse(f"{socket.gethostname()}/{_ended_pid()}/1700000000/slot0/{db}")
    assert namesake is not None
    assert not namesake.is_local()
    assert not namesake.is_dead(), "another host's worker is never declared dead from here"


def test_a_clock_step_does_not_kill_a_live_owner(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = database_id(engine)
    me = Owner.parse(str(this_process("slot0", db)))
    assert me is not None
    stepped = psutil.boot_time() + 5.0  # the wall clock jumped five seconds
    monkeypatch.setattr("psutil._pslinux.boot_time", lambda: stepped)
    assert not me.is_dead(), "a live process stays alive when the clock steps"
    assert me.is_this_process()


def test_a_queued_run_no_worker_here_will_claim_says_why(
    sessions: sessionmaker[Session], settings: Settings, server: Server
) -> None:
    request = ValidationRequest(
        build="cand", scenarios=("chat",), source=TriggerSource.API, tag="x", baseline="none"
    )
    with transaction(sessions) as session:  # planned before the host changed
        run_id = plan(session, settings, request, "fingerprint-before").run_ids[0]
    with server.client() as client:
        body = client.get(f"/api/v1/runs/{run_id}").json()
        queued = client.get("/api/v1/queue").json()["queued"][0]["run"]
        page = client.get("/").text
    reason = body["waiting_reason"]
    assert reason is not None
    assert f"fingerprint fingerprint-, but this host's is {HOST_FP}" in reason
    assert queued["waiting_reason"] == reason
    assert "only a worker on a host like the one that planned it" in page


def test_windows_spooled_while_the_database_is_away_are_stored_when_it_is_back(
    sessions: sessionmaker[Session], settings: Settings, tmp_path: Path
) -> None:
    run_id = _queued(sessions, settings)
    spool = tmp_path / "spool.jsonl"
    _write(spool, 6)
    ingest = SpoolIngest(sessions, run_id)
    away = make_engine(f"sqlite:///{tmp_path / 'away' / 'x.db'}")
    ingest.sessions = session_factory(away)
    with pytest.raises(StoreError):  # no such table: the database is not the run's
        ingest.follow(spool)
    away.dispose()
    ingest.sessions = sessions  # back
    ingest.follow(spool)
    with transaction(sessions) as session:
        query = select(func.count()).select_from(WindowRow).where(WindowRow.run_id == run_id)
        stored = session.scalar(query)
    expected = sum(1 for record in read_spool(spool) if isinstance(record, Window))
    assert stored == expected > 0


def test_recovery_writes_the_report_a_dead_worker_left_unwritten(
    engine: Engine, sessions: sessionmaker[Session], settings: Settings
) -> None:
    run_id = _queued(sessions, settings)
    assert _claim(sessions, worker="w") == run_id
    conclude_run(run_id, settings, sessions, RunStatus.ERROR, "gateway did not start", None,
                 owner="w")  # fmt: skip
    page = settings.data_dir / "reports" / "runs" / str(run_id) / "index.html"
    page.unlink()  # as if the worker died right after the final transaction
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.report_path, run.ended_at = None, utcnow() - timedelta(minutes=2)
    recover(settings, sessions, database_id(engine))
    assert page.is_file()
    assert "gateway did not start" in page.read_text()
    assert _run(sessions, run_id).report_path is not None
    assert _alerts(sessions, run_id) == 1
