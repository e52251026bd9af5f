"""Restart safety: take back runs whose holder stopped, and clean up what it left running.

At start-up and then periodically:

1. Runs whose lease expired (their holder stopped renewing it: a worker, or the CLI for
   the queued runs it holds) are taken back with ``queue.expire_leases`` - exactly one
   recovering host gets each - and concluded as ``interrupted`` through ``conclude_run``:
   the windows already written are kept (plus those still in the run's local spool file),
   the run gets a partial report saying why, and its alert goes through the outbox whose
   dedupe key allows one alert per run and kind, even if a recovery dies half-way and is
   redone. A run held by a worker of *this* host whose process is certainly gone (a
   kill -9 of the previous service) is taken back at once instead of after its lease.
2. Gateway and Locust processes the pipeline started carry ``OBSERVATORY_RUN_ID`` and
   ``OBSERVATORY_OWNER`` (the worker id) in their environment and run in their own process
   groups, so they outlive a killed service. Only processes whose owner is a worker id for
   this database are considered (never another database's or another user's). Such a
   process is an orphan when its owner is certainly dead, or when its owner is this very
   process and the run is no longer active or is now held by someone else. Orphans get
   SIGTERM (with their process group), then SIGKILL after a grace period.
3. A run that ended (final status, verdict and alert are one transaction) but whose holder
   died before writing its report gets its report.

Unheld queued runs are untouched: the worker claims them as usual.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass

import psutil
from sqlalchemy.orm import Session, sessionmaker

from observatory.conclude import conclude_run, write_report
from observatory.domain import RunStatus
from observatory.errors import ObservatoryError
from observatory.ingest import SpoolIngest
from observatory.load.spool import SPOOL_NAME
from observatory.markers import OWNER_ENV, RUN_ID_ENV
from observatory.service.owner import Owner, this_process
from observatory.settings import Settings
from observatory.store import queue
from observatory.store.db import transaction
from observatory.store.queue import ExpiredRun

log = logging.getLogger(__name__)

KILL_GRACE_S = 5.0
REPORT_SETTLE_S = 60.0  # a run's own worker writes its report within this after the end


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    interrupted: tuple[int, ...]
    killed: tuple[int, ...]  # pids


@dataclass(frozen=True, slots=True)
class MarkedProcess:
    process: psutil.Process
    run_id: int
    owner: Owner | None  # None: not a service worker id (e.g. a CLI run's)


def recover(settings: Settings, sessions: sessionmaker[Session], database: str) -> RecoveryResult:
    """One recovery pass: interrupted runs concluded, orphaned processes killed.

    ``database`` is ``owner.database_id`` of the engine behind ``sessions``.
    """
    recoverer = str(this_process("recovery", database))
    expired, dead = take_back(settings, sessions, recoverer)
    # Processes first: a killed Locust stops writing, so its spool is complete when read.
    killed = kill_orphans(sessions, database)
    interrupted = [r.run_id for r in expired if _interrupt(settings, sessions, r, dead, recoverer)]
    write_missing_reports(settings, sessions)
    return RecoveryResult(tuple(interrupted), tuple(killed))


def take_back(
    settings: Settings, sessions: sessionmaker[Session], recoverer: str
) -> tuple[list[ExpiredRun], set[str]]:
    """The runs whose holder stopped (lease expired or owner dead), now held by recovery."""
    with transaction(sessions) as session:
        dead = _dead_local_owners(queue.active_owners(session).values())
        expired = queue.expire_leases(
            session, recoverer=recoverer, lease_s=settings.service.lease, dead_owners=dead
        )
    return expired, dead


def _interrupt(
    settings: Settings,
    sessions: sessionmaker[Session],
    run: ExpiredRun,
    dead: set[str],
    recoverer: str,
) -> bool:
    """Keep what the run measured, then conclude it interrupted (report, one alert)."""
    reason = _reason(run, run.owner in dead)
    log.warning("run %s interrupted: %s", run.run_id, reason)
    try:
        _ingest_spool(settings, sessions, run.run_id)
        conclude_run(
            run.run_id, settings, sessions, RunStatus.INTERRUPTED, reason, None, owner=recoverer
        )
    except ObservatoryError as exc:
        # Its recovery lease runs out and the next pass (here or on another host) retries.
        log.error("run %s could not be concluded: %s", run.run_id, exc)
        return False
    return True


def write_missing_reports(settings: Settings, sessions: sessionmaker[Session]) -> list[int]:
    """Write the reports of measured runs that ended without one (their writer died)."""
    with transaction(sessions) as session:
        missing = queue.ended_without_report(session, settle_s=REPORT_SETTLE_S)
    for run_id in missing:
        log.warning("run %s ended without its report; writing it", run_id)
        write_report(run_id, settings, sessions)
    return missing


def _ingest_spool(settings: Settings, sessions: sessionmaker[Session], run_id: int) -> None:
    """Windows the load generator spooled but the dead worker never stored (upserts: safe)."""
    # The pipeline's run directory: data_dir/runs/<id> (see pipeline.execute_run).
    spool = settings.data_dir / "runs" / str(run_id) / SPOOL_NAME
    if spool.is_file():
        stored = len(SpoolIngest(sessions, run_id).follow(spool))
        log.info("run %s: %d spooled window record(s) read back", run_id, stored)


def _dead_local_owners(owners: Iterable[str | None]) -> set[str]:
    dead = set()
    for text in owners:
        owner = Owner.parse(text)
        if owner is not None and owner.is_dead():
            dead.add(str(owner))
    return dead


def _reason(run: ExpiredRun, owner_dead: bool) -> str:
    beat = run.heartbeat_at.isoformat(timespec="seconds") if run.heartbeat_at else "never"
    why = "its process is gone" if owner_dead else "no heartbeat before the lease ended"
    owner = run.owner or "unknown worker"
    return f"lease expired: the worker stopped ({owner}: {why}; last heartbeat {beat})"


def marked_processes() -> list[MarkedProcess]:
    """This user's processes that carry a run marker in their environment."""
    found = []
    for process in psutil.process_iter():
        try:
            env = process.environ()
        except (psutil.Error, OSError):
            continue  # gone, or another user's process: never ours to touch
        run_id = env.get(RUN_ID_ENV, "")
        if run_id.isdigit() and process.pid != os.getpid():
            found.append(MarkedProcess(process, int(run_id), Owner.parse(env.get(OWNER_ENV))))
    return found


def kill_orphans(sessions: sessionmaker[Session], database: str) -> list[int]:
    """Kill this database's marked processes that nobody owns any more; return their pids."""
    marked = [m for m in marked_processes() if m.owner is not None and m.owner.db == database]
    if not marked:
        return []
    with transaction(sessions) as session:
        holders = queue.active_owners(session)
    orphans = [m for m in marked if _is_orphan(m, holders)]
    for orphan in orphans:
        log.warning(
            "killing orphaned process %s of run %s (owner %s)",
            orphan.process.pid,
            orphan.run_id,
            orphan.owner,
        )
    return terminate([m.process for m in orphans])


def _is_orphan(marked: MarkedProcess, holders: dict[int, str | None]) -> bool:
    owner = marked.owner
    if owner is None:
        return False
    if owner.is_dead():
        return True  # e.g. the service that started it was killed -9
    if not owner.is_this_process():
        return False  # a live service: its processes are its own business
    # Ours, yet the run ended or another worker (or recovery) holds it: a leftover.
    return holders.get(marked.run_id) != str(owner)


def terminate(processes: list[psutil.Process], grace: float = KILL_GRACE_S) -> list[int]:
    """SIGTERM each process and its process group, SIGKILL what is left after ``grace``."""
    own_group = os.getpgrp()
    for process in processes:
        _signal_group(process, own_group, signal.SIGTERM)
        _signal(process, signal.SIGTERM)
    _, alive = psutil.wait_procs(processes, timeout=grace)
    for process in alive:
        _signal_group(process, own_group, signal.SIGKILL)
        _signal(process, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=grace)
    return [p.pid for p in processes]


def _signal(process: psutil.Process, signum: signal.Signals) -> None:
    with contextlib.suppress(psutil.Error):
        process.send_signal(signum)


def _signal_group(process: psutil.Process, own_group: int, signum: signal.Signals) -> None:
    # The pipeline starts each child in its own session; its group holds any grandchild that
    # dropped the marker from its environment. Never our own group.
    try:
        group = os.getpgid(process.pid)
        if group != own_group and group == process.pid:
            os.killpg(group, signum)
    except (ProcessLookupError, PermissionError):
        pass
