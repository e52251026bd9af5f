"""Who holds a run: worker ids that say which host, process and database claimed it.

A worker id reads ``<host>/<pid>/<process start time>/<slot>/<database id>``. The start
time makes the id unique even when the operating system reuses the pid, so recovery can
tell for certain that the process behind a worker id of this host is gone (after a kill -9)
without waiting for its lease to run out. The database id (a hash of the database URL
without its password) keeps a service from touching the processes of a service on the same
host that works for another database.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass

import psutil
from sqlalchemy import Engine

_PATTERN = re.compile(
    r"^(?P<host>[^/]+)/(?P<pid>\d+)/(?P<started>\d+)/(?P<slot>[\w.-]+)/(?P<db>[0-9a-f]+)$"
)


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    pid: int
    started: int  # process start time, whole epoch seconds
    slot: str
    db: str

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.started}/{self.slot}/{self.db}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner a worker id names, or None for ids of another shape (e.g. the CLI's)."""
        match = _PATTERN.match(text or "")
        if match is None:
            return None
        return cls(
            match["host"], int(match["pid"]), int(match["started"]), match["slot"], match["db"]
        )

    def is_local(self) -> bool:
        return self.host == socket.gethostname()

    def is_this_process(self) -> bool:
        me = this_process(self.slot, self.db)
        return (self.host, self.pid, self.started) == (me.host, me.pid, me.started)

    def is_dead(self) -> bool:
        """True only when this host's process behind the id has certainly ended."""
        if not self.is_local():
            return False
        try:
            process = psutil.Process(self.pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return True  # ended; only its parent has not collected it yet
            return int(process.create_time()) != self.started
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False


def this_process(slot: str, db: str) -> Owner:
    """The owner id of ``slot`` (a load slot number, "recovery", ...) of this process."""
    pid = os.getpid()
    return Owner(socket.gethostname(), pid, int(psutil.Process(pid).create_time()), slot, db)


def database_id(engine: Engine) -> str:
    """A short id of the database (a hash of its URL without the password)."""
    url = engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:10]
