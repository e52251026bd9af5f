"""Claiming and leases on SQLite and Postgres, with real concurrent worker processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta
from typing import Any

from claimer import claim_until_empty
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import RunStatus, TriggerSource
from observatory.service.lease import LeaseKeeper
from observatory.settings import Settings
from observatory.store import queue
from observatory.store.db import transaction
from observatory.store.tables import Build, Run, utcnow
from observatory.validation import ValidationRequest, plan
from tests.service.conftest import HOST_FP

WORKERS = 4
RUNS = 50


def _plan(
    sessions: sessionmaker[Session],
    settings: Settings,
    tag: str,
    host: str = HOST_FP,
    baseline: str = "auto",
) -> tuple[int, ...]:
    request = ValidationRequest(
        build="cand", scenarios=("chat",), source=TriggerSource.API, tag=tag, baseline=baseline
    )
    with transaction(sessions) as session:
        return plan(session, settings, request, host).run_ids


def _claim(
    sessions: sessionmaker[Session], worker: str = "w", host: str | None = HOST_FP
) -> int | None:
    with transaction(sessions) as session:
        run = queue.claim_next(session, worker, 60.0, host_fingerprint=host)
        return None if run is None else run.id


def _set(sessions: sessionmaker[Session], run_id: int, **values: Any) -> None:
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        for key, value in values.items():
            setattr(run, key, value)


def test_oldest_first_and_a_candidate_waits_for_its_baseline(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base1, cand1 = _plan(sessions, settings, "a")
    base2, cand2 = _plan(sessions, settings, "b")
    assert _claim(sessions) == base1
    assert _claim(sessions) == base2, "cand1 waits while its baseline is active"
    assert _claim(sessions) is None
    _set(sessions, base1, status=RunStatus.DONE)
    assert _claim(sessions) == cand1
    _set(sessions, base2, status=RunStatus.ERROR)  # a failed baseline releases its candidate
    assert _claim(sessions) == cand2
    with transaction(sessions) as session:
        run = session.get(Run, cand2)
        assert run is not None
        assert run.status == RunStatus.PROVISIONING
        assert run.claimed_by == "w"
        assert run.lease_until is not None
        assert run.heartbeat_at is not None
        assert run.lease_until - run.heartbeat_at == timedelta(seconds=60)


def test_a_baseline_measured_alongside_is_claimed_with_its_candidate(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base, cand = _plan(sessions, settings, "a", baseline="alongside")
    other_base, _ = _plan(sessions, settings, "b")  # an ordinary pair: one run at a time
    with transaction(sessions) as session:
        run = queue.claim_next(session, "w", 60.0, host_fingerprint=HOST_FP)
        assert run is not None
        assert run.id == base
        assert queue.claim_alongside(session, run, "w", 60.0) == cand
    with transaction(sessions) as session:
        partner = session.get(Run, cand)
        assert partner is not None
        assert (partner.status, partner.claimed_by) == (RunStatus.PROVISIONING, "w")
        assert partner.baseline_request == "alongside"
        run = queue.claim_next(session, "w2", 60.0, host_fingerprint=HOST_FP)
        assert run is not None
        assert run.id == other_base
        assert queue.claim_alongside(session, run, "w2", 60.0) is None


def test_a_run_is_claimed_on_the_host_that_planned_it(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base, _ = _plan(sessions, settings, "a", host="other-host")
    assert _claim(sessions, host=HOST_FP) is None
    assert _claim(sessions, host="other-host") == base


def test_an_expired_lease_is_taken_back_exactly_once(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base, _ = _plan(sessions, settings, "a")
    assert _claim(sessions, worker="gone") == base
    with transaction(sessions) as session:
        assert queue.expire_leases(session) == [], "the lease has not expired yet"
    _set(sessions, base, lease_until=utcnow() - timedelta(seconds=1))
    results: list[list[queue.ExpiredRun]] = []

    def recover(name: str) -> None:
        with transaction(sessions) as session:
            results.append(queue.expire_leases(session, recoverer=name, lease_s=30))

    threads = [threading.Thread(target=recover, args=(f"r{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [run for found in results for run in found]
    assert [(r.run_id, r.owner) for r in taken] == [(base, "gone")]
    with transaction(sessions) as session:
        run = session.get(Run, base)
        assert run is not None
        assert run.claimed_by is not None
        assert run.claimed_by.startswith("r")
        assert run.lease_until is not None
        assert run.lease_until > utcnow()


def test_a_dead_owner_is_taken_back_before_its_lease_ends(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base, _ = _plan(sessions, settings, "a")
    _claim(sessions, worker="host/123/456/slot0")
    with transaction(sessions) as session:
        assert queue.expire_leases(session, dead_owners={"someone-else"}) == []
        taken = queue.expire_leases(session, dead_owners={"host/123/456/slot0"})
    assert [r.run_id for r in taken] == [base]


def _insert_runs(sessions: sessionmaker[Session], count: int) -> list[int]:
    with transaction(sessions) as session:
        build = Build(
            name="b", gateway="litellm", version="1", provision_kind="pip", provision="litellm==1"
        )
        session.add(build)
        session.flush()
        runs = [
            Run(
                build_id=build.id,
                scenario="chat",
                profile={},
                duration_s=60,
                warmup_s=5,
                window_s=10,
                status=RunStatus.QUEUED,
            )
            for _ in range(count)
        ]
        session.add_all(runs)
        session.flush()
        return [r.id for r in runs]


def test_fifty_runs_four_worker_processes_each_run_claimed_once(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    run_ids = _insert_runs(sessions, RUNS)
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS + 1)
    results = context.Queue()
    url = engine.url.render_as_string(hide_password=False)
    processes = [
        context.Process(target=claim_until_empty, args=(url, f"worker-{i}", barrier, results))
        for i in range(WORKERS)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)  # released together
    reports = dict(results.get(timeout=120) for _ in processes)
    for process in processes:
        process.join(30)
        assert process.exitcode == 0
    claims = [run_id for claimed in reports.values() for run_id in claimed]
    assert sorted(claims) == sorted(run_ids), "every run claimed, none twice"
    with transaction(sessions) as session:
        owners = {row.id: row.claimed_by for row in session.execute(select(Run.id, Run.claimed_by))}
    for name, claimed in reports.items():
        assert all(owners[run_id] == name for run_id in claimed)


def test_only_the_holder_renews_a_lease(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base, _ = _plan(sessions, settings, "a")
    _claim(sessions, worker="w")
    later = utcnow() + timedelta(minutes=10)
    with transaction(sessions) as session:
        assert queue.renew_lease(session, base, "w", 60, now=later)
        assert not queue.renew_lease(session, base, "intruder", 60)
    with transaction(sessions) as session:
        run = session.get(Run, base)
        assert run is not None
        assert run.lease_until == later + timedelta(seconds=60)
        queue.expire_leases(session, later + timedelta(minutes=5), recoverer="r")
    with transaction(sessions) as session:
        assert not queue.renew_lease(session, base, "w", 60), "taken back: fenced"


def _lease(sessions: sessionmaker[Session], run_id: int) -> Any:
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run.lease_until


def test_the_lease_keeper_renews_and_stops_a_run_taken_back(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base, _ = _plan(sessions, settings, "a")
    _claim(sessions, worker="w")
    service_stop, run_stop = threading.Event(), threading.Event()
    with LeaseKeeper(sessions, base, "w", 1.2, service_stop, run_stop):
        time.sleep(1.6)
        lease = _lease(sessions, base)
        assert utcnow() < lease <= utcnow() + timedelta(seconds=1.2), "renewed by the keeper"
        assert not run_stop.is_set()
        with transaction(sessions) as session:
            assert queue.expire_leases(session, dead_owners={"w"}, recoverer="r")
        assert run_stop.wait(5), "a run taken back is stopped"


def test_the_lease_keeper_passes_a_service_stop_to_the_run(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    base, _ = _plan(sessions, settings, "a")
    _claim(sessions, worker="w")
    service_stop, run_stop = threading.Event(), threading.Event()
    with LeaseKeeper(sessions, base, "w", 60, service_stop, run_stop):
        service_stop.set()
        assert run_stop.wait(5)
