"""Who holds a run: worker ids that say which host and which process claimed it.

A worker id reads ``<host>/<pid>/<process start time>/<slot>``. The start time makes the id
unique even when the operating system reuses the pid, so recovery can tell for certain that
the process behind a worker id of this host is gone (after a kill -9) without waiting for
its lease to run out.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

import psutil

_PATTERN = re.compile(r"^(?P<host>[^/]+)/(?P<pid>\d+)/(?P<started>\d+)/(?P<slot>[\w.-]+)$")


@dataclass(frozen=True, slots=True)
class Owner:
    host: str
    pid: int
    started: int  # process start time, whole epoch seconds
    slot: str

    def __str__(self) -> str:
        return f"{self.host}/{self.pid}/{self.started}/{self.slot}"

    @classmethod
    def parse(cls, text: str | None) -> Owner | None:
        """The owner a worker id names, or None for ids of another shape (e.g. the CLI's)."""
        match = _PATTERN.match(text or "")
        if match is None:
            return None
        return cls(match["host"], int(match["pid"]), int(match["started"]), match["slot"])

    def is_local(self) -> bool:
        return self.host == socket.gethostname()

    def is_dead(self) -> bool:
        """True only when this host's process behind the id has certainly ended."""
        if not self.is_local():
            return False
        try:
            return int(psutil.Process(self.pid).create_time()) != self.started
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return False


def this_process(slot: str) -> Owner:
    """The owner id of ``slot`` (a load slot number, "recovery", ...) of this process."""
    pid = os.getpid()
    return Owner(socket.gethostname(), pid, int(psutil.Process(pid).create_time()), slot)
