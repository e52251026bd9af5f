"""A worker process of the claiming test: few imports, so it starts fast under spawn."""

from __future__ import annotations

from typing import Any

from observatory.store import queue
from observatory.store.db import make_engine, session_factory, transaction


def claim_until_empty(url: str, name: str, barrier: Any, results: Any) -> None:
    """Wait for every worker to be ready, then claim runs until none is left."""
    engine = make_engine(url)
    sessions = session_factory(engine)
    with engine.connect():
        pass  # connect before the barrier: the race is on claiming, not on connecting
    claimed = []
    barrier.wait()
    while True:
        with transaction(sessions) as session:
            run = queue.claim_next(session, name, 60.0)
            run_id = None if run is None else run.id
        if run_id is None:
            break
        claimed.append(run_id)
    engine.dispose()
    results.put((name, claimed))
