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
from contextlib import ExitStack

from sqlalchemy.orm import Session, sessionmaker

from observatory.errors import ObservatoryError
from observatory.pipeline import RunContext, execute_run, execute_side_by_side
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
                claimed = self._claim(worker)
            except ObservatoryError as exc:
                log.error("worker %s could not claim a run: %s", worker, exc)
                claimed = ()
            if not claimed:
                self.wake.wait(self.poll_s)
                self.wake.clear()
                continue
            self._execute(worker, claimed)
        log.info("worker %s stopped", worker)

    def _claim(self, worker: str) -> tuple[int, ...]:
        """The claimed run, and the candidate to measure side by side with it, if any."""
        lease_s = self.settings.service.lease
        with transaction(self.sessions) as session:
            run = queue.claim_next(session, worker, lease_s, host_fingerprint=self.host_fingerprint)
            if run is None:
                return ()
            partner = queue.claim_alongside(session, run, worker, lease_s)
            return (run.id,) if partner is None else (run.id, partner)

    def _execute(self, worker: str, run_ids: tuple[int, ...]) -> None:
        log.info("worker %s executes run(s) %s", worker, run_ids)
        run_stop = threading.Event()  # set by a keeper: service stopping, or lease lost
        ctx = RunContext(self.settings, self.sessions, worker=worker, stop=run_stop)
        lease_s = self.settings.service.lease
        try:
            with ExitStack() as keepers:
                for run_id in run_ids:
                    keepers.enter_context(
                        LeaseKeeper(self.sessions, run_id, worker, lease_s, self.stop, run_stop)
                    )
                if len(run_ids) == 2:
                    outcomes = execute_side_by_side(*run_ids, ctx)
                else:
                    outcomes = [execute_run(run_ids[0], ctx)]
            for outcome in outcomes:
                log.info("run %s ended %s: %s", outcome.run_id, outcome.status, outcome.reason)
        except Exception:
            # A bug must not kill the slot: the run's lease expires and recovery ends it.
            log.exception("run(s) %s: unexpected failure in the pipeline", run_ids)
