"""Bearer-token auth: writes always, reads when ``service.read_auth`` is on.

Reads also accept a browser session (``sessions``, opened by the login page); writes only
ever accept the bearer header.

The token is compared in constant time (``hmac.compare_digest`` over SHA-256 digests, so
not even the length of the configured token leaks through timing). With no token
configured, writes are refused outright: an open write API would let anyone queue load.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from observatory.service.problems import ApiError
from observatory.service.sessions import logged_in
from observatory.service.state import ServiceState

WRITES_DISABLED = (
    "writes are disabled: no API token is configured; set service.api_token in the "
    "config file (or the environment variable OBSERVATORY_SERVICE__API_TOKEN) and send "
    "it as 'Authorization: Bearer <token>'"
)
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="observatory"'}


def state_of(request: Request) -> ServiceState:
    state = request.app.state.service
    assert isinstance(state, ServiceState)
    return state


def require_write(request: Request) -> None:
    """Dependency of every write endpoint."""
    _check(request, state_of(request), WRITES_DISABLED)


def require_read(request: Request) -> None:
    """Dependency of every read endpoint: a no-op unless ``service.read_auth`` is on."""
    state = state_of(request)
    if not state.settings.service.read_auth:
        return
    if "authorization" not in request.headers and logged_in(request):
        return
    _check(request, state, WRITES_DISABLED.replace("writes are", "reads (read_auth) are"))


def _check(request: Request, state: ServiceState, disabled: str) -> None:
    token = state.settings.service.api_token
    if token is None:
        raise ApiError(403, disabled)
    header = request.headers.get("authorization")
    if not header:
        raise ApiError(401, "missing 'Authorization: Bearer <token>' header", headers=CHALLENGE)
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if (
        scheme.lower() != "bearer"
        or not given
        or not token_matches(given, token.get_secret_value())
    ):
        raise ApiError(401, "invalid API token", headers=CHALLENGE)


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison, independent of both lengths."""
    given_digest = hashlib.sha256(given.encode("utf-8")).digest()
    expected_digest = hashlib.sha256(expected.encode("utf-8")).digest()
    return hmac.compare_digest(given_digest, expected_digest)
