"""Moves a run's measurements into the database while the run goes on.

Windows and error samples come from the load generator's spool (durable on disk within one
window); resource samples come from the sampler thread. Both are upserted on their natural
keys, so a replay after a crash never duplicates a row.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import ErrorSample, ResourceSample, Window
from observatory.errors import StoreError
from observatory.load.spool import follow_spool
from observatory.neighbours import NEIGHBOURS
from observatory.store import samples
from observatory.store.db import transaction


class SpoolIngest:
    def __init__(self, sessions: sessionmaker[Session], run_id: int) -> None:
        self.sessions = sessions
        self.run_id = run_id
        self.last_gateway_rss_mb: float | None = None
        self.last_neighbours_cores: float | None = None
        self._offset = 0
        self._spool: Path | None = None
        self._resources: list[ResourceSample] = []
        self._lock = threading.Lock()

    def add_resources(self, sample: ResourceSample) -> None:
        """Sampler callback (another thread): buffer until the next follow()."""
        with self._lock:
            self._resources.append(sample)
            if sample.role == "gateway" and sample.rss_mb is not None:
                self.last_gateway_rss_mb = sample.rss_mb
            if sample.role == NEIGHBOURS and sample.cpu_percent is not None:
                self.last_neighbours_cores = sample.cpu_percent / 100.0

    def follow(self, spool: Path) -> list[Window]:
        """Store what is new in the spool and the buffered samples; return the new windows."""
        self._spool = spool
        records, offset = follow_spool(spool, self._offset)
        windows = [r for r in records if isinstance(r, Window)]
        errors = [r for r in records if isinstance(r, ErrorSample)]
        with self._lock:
            resources, self._resources = self._resources, []
        try:
            if windows or errors or resources:
                with transaction(self.sessions) as session:
                    samples.add_windows(session, self.run_id, windows)
                    samples.add_error_samples(session, self.run_id, errors)
                    samples.add_resource_samples(session, self.run_id, resources)
        except StoreError:
            with self._lock:  # read again next time: nothing is lost while the database is away
                self._resources = resources + self._resources
            raise
        self._offset = offset
        return windows

    def drain(self) -> None:
        """Store everything left (after the load generator flushed its last windows)."""
        if self._spool is not None:
            self.follow(self._spool)
        else:
            with self._lock:
                resources, self._resources = self._resources, []
            with transaction(self.sessions) as session:
                samples.add_resource_samples(session, self.run_id, resources)
