"""Run markers in the environment of every process a run starts.

The gateway, the mock upstream and Locust run in their own process groups so that they
outlive a killed service; the markers let the restarted service find and stop them
(service/recovery.py). The pipeline sets the marker for the thread executing a run; the
code that spawns processes adds it to the child's environment with ``marked``.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar

RUN_ID_ENV = "OBSERVATORY_RUN_ID"
OWNER_ENV = "OBSERVATORY_OWNER"

_current: ContextVar[dict[str, str] | None] = ContextVar("observatory_run_marker", default=None)


@contextmanager
def marking(run_id: int, owner: str) -> Iterator[None]:
    """Processes spawned by this thread inside the block carry the run's marker."""
    token = _current.set({RUN_ID_ENV: str(run_id), OWNER_ENV: owner})
    try:
        yield
    finally:
        _current.reset(token)


def marked(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``env`` with the current run's marker (none outside a run), ours replacing inherited."""
    env.pop(RUN_ID_ENV, None)
    env.pop(OWNER_ENV, None)
    env.update(_current.get() or {})
    return env
