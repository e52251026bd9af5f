"""What the HTTP app shares with the rest of the service process."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from observatory.settings import Settings


def _nothing() -> None:
    return None


@dataclass
class ServiceState:
    """Settings, sessions and the liveness of the other parts, as the app sees them.

    ``components`` maps a part's name ("worker", "scheduler", "delivery") to a function
    telling whether it is alive; a part left out is reported as disabled.
    """

    settings: Settings
    sessions: sessionmaker[Session]
    host_fingerprint: str
    components: dict[str, Callable[[], bool]] = field(default_factory=dict)
    on_enqueue: Callable[[], None] = _nothing  # wakes idle worker slots
    # Serialises "is there a duplicate?" and "plan it" within this process, so two
    # simultaneous identical requests get one 202 and one 409.
    plan_lock: threading.Lock = field(default_factory=threading.Lock)
