"""One service process: HTTP server, scheduler, queue worker, alert delivery, maintenance.

Start-up order: migrate the database, register the configured builds, recover (runs whose
worker died are concluded ``interrupted``, orphaned processes killed), open the HTTP port,
and only then start claiming. Stop order (SIGTERM / Ctrl-C): no new fires, runs stopped
through their stop event (they end ``aborted`` with their data and report), alert delivery
and maintenance stopped, HTTP server closed last so the live page shows the shutdown.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import ExitCode
from observatory.environment import host_facts, host_fingerprint
from observatory.errors import ObservatoryError
from observatory.notify.outbox import run_delivery_loop
from observatory.service.app import create_app
from observatory.service.owner import database_id
from observatory.service.recovery import recover
from observatory.service.retention import compact
from observatory.service.scheduler import ScheduleRunner
from observatory.service.state import ServiceState
from observatory.service.worker import QueueWorker
from observatory.settings import Settings
from observatory.store import builds
from observatory.store.db import session_factory, transaction, upgrade

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 180.0  # runs need a moment to conclude (analysis, report) when stopped
RETENTION_EVERY_S = 86400.0
DELIVERY_INTERVAL_S = 5.0


class Service:
    """The parts of ``observatory serve``; ``run()`` blocks until a stop signal."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        host: str | None = None,
        port: int | None = None,
        worker: bool = True,
        scheduler: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions: sessionmaker[Session] = session_factory(engine)
        self.host = host or settings.service.host
        self.port = settings.service.port if port is None else port
        self.fingerprint = host_fingerprint(host_facts())
        self.database = database_id(engine)
        self.stop_runs = threading.Event()  # the pipeline's stop event: runs end aborted
        self.stop_rest = threading.Event()  # delivery and maintenance
        self.stopping = threading.Event()
        self.worker = QueueWorker(
            settings, self.sessions, self.fingerprint, self.stop_runs, database=self.database
        )
        self.scheduler = ScheduleRunner(settings, self.sessions, self.fingerprint)
        self.with_worker, self.with_scheduler = worker, scheduler
        self._threads: dict[str, threading.Thread] = {}
        self._server: uvicorn.Server | None = None

    def start(self) -> None:
        upgrade(self.engine)
        with transaction(self.sessions) as session:
            builds.sync_configured(session, self.settings.builds)
        self._recover()
        state = ServiceState(self.settings, self.sessions, self.fingerprint)
        # HTTP first: a port already taken fails the start before any run is claimed.
        self._start_http(state)
        if self.with_worker:
            self.worker.start()
            state.components["worker"] = lambda: self.worker.alive
            state.on_enqueue = self.worker.wake.set
        if self.with_scheduler:
            self.scheduler.start()
            state.components["scheduler"] = lambda: self.scheduler.alive
        self._thread("delivery", self._deliver)
        self._thread("maintenance", self._maintain)
        for name in ("delivery", "maintenance"):
            state.components[name] = self._threads[name].is_alive

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads[name] = thread
        thread.start()

    def _start_http(self, state: ServiceState) -> None:
        config = uvicorn.Config(
            create_app(state),
            host=self.host,
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._thread("http", self._server.run)
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._threads["http"].is_alive() or time.monotonic() > deadline:
                raise ObservatoryError(f"HTTP server did not start on {self.host}:{self.port}")
            time.sleep(0.05)
        log.info("listening on http://%s:%d", self.host, self.bound_port)

    @property
    def bound_port(self) -> int:
        """The port actually bound (``--port 0`` picks a free one)."""
        assert self._server is not None
        return int(self._server.servers[0].sockets[0].getsockname()[1])

    def _recover(self) -> None:
        try:
            result = recover(self.settings, self.sessions, self.database)
        except ObservatoryError as exc:
            log.error("recovery pass failed: %s", exc)
            return
        if result.interrupted or result.killed:
            log.warning(
                "recovery: runs %s interrupted, %d orphaned process(es) killed",
                list(result.interrupted),
                len(result.killed),
            )

    def _deliver(self) -> None:
        run_delivery_loop(self.sessions, self.settings, self.stop_rest, DELIVERY_INTERVAL_S)

    def _maintain(self) -> None:
        """Recovery every half lease; retention once a day (the first an hour after start)."""
        every = max(1.0, self.settings.service.lease / 2)
        next_compaction = time.monotonic() + 3600.0
        while not self.stop_rest.wait(every):
            self._recover()
            if time.monotonic() >= next_compaction:
                next_compaction = time.monotonic() + RETENTION_EVERY_S
                try:
                    compact(self.settings, self.sessions)
                except ObservatoryError as exc:
                    log.error("retention pass failed: %s", exc)

    def stop(self) -> None:
        """Graceful stop; safe to call twice."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        log.info("stopping: runs in progress end aborted with their data kept")
        self.scheduler.stop()
        self.stop_runs.set()
        self.worker.wake.set()
        if self.with_worker and not self.worker.join(SHUTDOWN_TIMEOUT_S):
            log.error("runs did not stop within %gs; their leases will expire", SHUTDOWN_TIMEOUT_S)
        self.stop_rest.set()
        for name in ("delivery", "maintenance"):
            self._join(name)
        if self._server is not None:
            self._server.should_exit = True
            self._join("http")
        self.engine.dispose()
        log.info("stopped")

    def _join(self, name: str) -> None:
        thread = self._threads.get(name)
        if thread is not None:
            thread.join(30)

    def run(self) -> int:
        """Start, wait for SIGTERM or Ctrl-C, stop; a second signal exits at once."""
        requested = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            if requested.is_set():
                log.error("second stop signal: exiting now; the next start recovers")
                os._exit(int(ExitCode.INTERNAL))
            log.info("received %s", signal.Signals(signum).name)
            requested.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not requested.wait(1.0):
                if not self._threads["http"].is_alive():
                    log.error("the HTTP server stopped; shutting down")
                    break
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return int(ExitCode.OK)
