"""Who holds a run: worker ids that say which host, process and database claimed it.

A worker id reads ``<host id>/<pid>/<process start>/<slot>/<database id>``.

- The host id is this boot of this machine (the kernel's random boot id), never the
  hostname: two hosts that share a name (or a cloned machine id) have different ones.
- The process start is counted in clock ticks since boot, not wall-clock seconds: a clock
  step (NTP, a VM resumed) changes nothing, and with the pid it names one process for
  certain even when the operating system reuses the pid. So recovery can tell that the
  process behind a worker id of this host is gone (after a kill -9) without waiting for
  its lease to run out.
- The database id (a hash of the database URL without its password) keeps a service from
  touching the processes of a service on the same host that works for another database.

Where the kernel offers no boot id (not Linux), the host id is random per process: such a
worker's runs are taken back when their lease expires, never earlier.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil
from sqlalchemy import Engine

_PATTERN = re.compile(
    r"^(?P<host>[^/]+)/(?P<pid>\d+)/(?P<started>\d+)/(?P<slot>[\w.-]+)/(?P<db>[0-9a-f]+)$"
)


@dataclass(frozen=True, slots=True)
class Owner:
    host: str  # host_id()
    pid: int
    started: int  # process_start(pid)
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
        return self.host == host_id()

    def is_this_process(self) -> bool:
        me = this_process(self.slot, self.db)
        return (self.host, self.pid, self.started) == (me.host, me.pid, me.started)

    def is_dead(self) -> bool:
        """True only when this host's process behind the id has certainly ended."""
        if not self.is_local():
            return False
        try:
            if psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE:
                return True  # ended; only its parent has not collected it yet
            return process_start(self.pid) != self.started
        except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError):
            return True
        except (psutil.Error, OSError):
            return False


def this_process(slot: str, db: str) -> Owner:
    """The owner id of ``slot`` (a load slot number, "recovery", ...) of this process."""
    pid = os.getpid()
    return Owner(host_id(), pid, process_start(pid), slot, db)


@functools.cache
def host_id() -> str:
    """This boot of this host: the kernel's boot id, or a random id for this process."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii")
    except OSError:
        return "p" + uuid.uuid4().hex[:15]
    return boot.strip().replace("-", "")[:16]


def process_start(pid: int) -> int:
    """When the process started, in clock ticks since boot (immune to clock steps)."""
    if not Path("/proc/self/stat").exists():  # no procfs: the epoch second
        return int(psutil.Process(pid).create_time())
    text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    # Field 22; the command name (field 2) sits in parentheses and may contain spaces.
    return int(text.rsplit(")", 1)[1].split()[19])


def database_id(engine: Engine) -> str:
    """A short id of the database (a hash of its URL without the password)."""
    url = engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:10]
