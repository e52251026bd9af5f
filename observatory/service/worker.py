"""The queue worker: ``load_slots`` threads, each claiming a queued run and executing it.

One load slot per host by default: two load runs on one host compete for its CPUs and
spoil each other's numbers. Hosts sharing a database each have their own slots; claiming
(``store.queue.claim_next``) makes sure each run is taken once.

Stopping: when ``stop`` is set no slot claims anything more, and each run's stop event is
set (by its ``LeaseKeeper``), so a stopping service ends its runs ``aborted`` with their
data kept.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from observatory.errors import ObservatoryError
from observatory.pipeline import RunContext, execute_run
from observatory.service.lease import LeaseKeeper
from observatory.service.owner import this_process
from observatory.settings import Settings
from observatory.store import queue
from observatory.store.db import transaction

log = logging.getLogger(__name__)

POLL_S = 2.0  # idle slots look for work this often


class QueueWorker:
    """The slots of this process; ``alive`` reports whether every slot thread runs."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        host_fingerprint: str,
        stop: threading.Event,
        *,
        database: str,
        poll_s: float = POLL_S,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.host_fingerprint = host_fingerprint
        self.database = database  # owner.database_id: part of every worker id
        self.stop = stop
        self.poll_s = poll_s
        self.wake = threading.Event()  # set by the API after queueing, to skip the poll wait
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for slot in range(self.settings.service.load_slots):
            worker = str(this_process(f"slot{slot}", self.database))
            thread = threading.Thread(
                target=self._loop, args=(worker,), name=f"worker-slot{slot}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    @property
    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for every slot to finish its run; True when all ended in time."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in self._threads)

    def _loop(self, worker: str) -> None:
        log.info("worker %s started", worker)
        while not self.stop.is_set():
            try:
                run_id = self._claim(worker)
            except ObservatoryError as exc:
                log.error("worker %s could not claim a run: %s", worker, exc)
                run_id = None
            if run_id is None:
                self.wake.wait(self.poll_s)
                self.wake.clear()
                continue
            self._execute(worker, run_id)
        log.info("worker %s stopped", worker)

    def _claim(self, worker: str) -> int | None:
        with transaction(self.sessions) as session:
            run = queue.claim_next(
                session,
                worker,
                self.settings.service.lease,
                host_fingerprint=self.host_fingerprint,
            )
            return None if run is None else run.id

    def _execute(self, worker: str, run_id: int) -> None:
        log.info("worker %s executes run %s", worker, run_id)
        run_stop = threading.Event()  # set by the keeper: service stopping, or lease lost
        ctx = RunContext(self.settings, self.sessions, worker=worker, stop=run_stop)
        lease_s = self.settings.service.lease
        try:
            with LeaseKeeper(self.sessions, run_id, worker, lease_s, self.stop, run_stop):
                outcome = execute_run(run_id, ctx)
            log.info("run %s ended %s: %s", run_id, outcome.status, outcome.reason)
        except Exception:
            # A bug must not kill the slot: the run's lease expires and recovery ends it.
            log.exception("run %s: unexpected failure in the pipeline", run_id)
