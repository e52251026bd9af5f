"""Browser sessions for the HTML pages when ``service.read_auth`` is on.

A session is a random id kept in this process's memory (a restart logs everyone out);
the cookie carries only that id, never the token. A session authorises reads only:
writes always need the bearer header, so no page can be made to write by another site.
"""

from __future__ import annotations

import secrets
import threading
import time

from fastapi import Request

COOKIE = "observatory_session"
TTL_S = 12 * 3600.0
MAX_SESSIONS = 1000


class LoginSessions:
    """Session ids and their expiry (monotonic seconds); the oldest go first when full."""

    def __init__(self, ttl_s: float = TTL_S) -> None:
        self.ttl_s = ttl_s
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def open(self) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired()
            while len(self._expiry) >= MAX_SESSIONS:
                del self._expiry[next(iter(self._expiry))]
            self._expiry[session_id] = time.monotonic() + self.ttl_s
        return session_id

    def valid(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        with self._lock:
            expiry = self._expiry.get(session_id)
        return expiry is not None and expiry > time.monotonic()

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._expiry.pop(session_id or "", None)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for session_id in [s for s, t in self._expiry.items() if t <= now]:
            del self._expiry[session_id]


def sessions_of(request: Request) -> LoginSessions:
    sessions = getattr(request.app.state, "logins", None)
    assert isinstance(sessions, LoginSessions), "create_app installs the login sessions"
    return sessions


def logged_in(request: Request) -> bool:
    return sessions_of(request).valid(request.cookies.get(COOKIE))
