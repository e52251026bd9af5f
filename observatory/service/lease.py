"""Keeps a worker's lease on the run it executes, for as long as the worker lives.

The pipeline heartbeats while load runs, but a run also spends time provisioning, analysing
and writing its report; a 24-hour run's analysis may outlast the lease. This keeper renews
the lease every third of it from its own thread, whatever the pipeline is doing, so a lease
expires only when the worker's process is gone or hung, or the database unreachable for a
whole lease. Renewal is fenced on the worker id: once recovery has taken the run back, the
keeper stops the run instead of fighting for it.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import RunStatus
from observatory.errors import ObservatoryError
from observatory.store import queue
from observatory.store.db import transaction
from observatory.store.tables import Run

log = logging.getLogger(__name__)

CHECK_S = 0.5  # how quickly a service stop reaches the run


class LeaseKeeper:
    """Renews one run's lease; sets ``run_stop`` when the service stops or the lease is lost."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        run_id: int,
        worker: str,
        lease_s: float,
        service_stop: threading.Event,
        run_stop: threading.Event,
    ) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.worker = worker
        self.lease_s = lease_s
        self.service_stop = service_stop
        self.run_stop = run_stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{run_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        every = self.lease_s / 3
        waited = 0.0
        while not self._done.wait(CHECK_S):
            if self.service_stop.is_set():
                self.run_stop.set()
            waited += CHECK_S
            if waited >= every:
                waited = 0.0
                if not self._renew():
                    return

    def _renew(self) -> bool:
        """True while the run is ours and active; stops the run if it was taken away."""
        try:
            with transaction(self.sessions) as session:
                if queue.renew_lease(session, self.run_id, self.worker, self.lease_s):
                    return True
                run = session.get(Run, self.run_id)
                ended = run is None or RunStatus(run.status).finished
        except ObservatoryError as exc:
            log.error("run %s: lease not renewed: %s", self.run_id, exc)
            return True  # try again next time; the lease may still hold
        if not ended:
            log.error("run %s: %s lost its lease; stopping the run", self.run_id, self.worker)
            self.run_stop.set()
        return False
