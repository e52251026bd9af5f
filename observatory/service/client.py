"""A small client of the observatory's HTTP API (what ``observatory trigger`` uses).

httpx errors become the project's errors here: a refused request (4xx) is an
``InputError`` (exit 2) carrying the server's message, a failed server or network is an
``ApiUnavailableError`` (exit 4; callers that wait may retry it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from observatory.errors import InputError, ObservatoryError

TIMEOUT_S = 30.0


class ApiUnavailableError(ObservatoryError):
    """The server could not be reached or failed (5xx): worth retrying."""


@dataclass(frozen=True, slots=True)
class Submitted:
    validation_id: int
    duplicate: bool  # True: the same validation was already queued or running (409)
    body: dict[str, Any]


class ApiClient:
    def __init__(self, server: str, token: str | None, *, timeout: float = TIMEOUT_S) -> None:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.server = server.rstrip("/")
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def submit(self, body: dict[str, Any]) -> Submitted:
        """POST /api/v1/validations; a 409 duplicate is returned, not raised."""
        response = self._request("POST", "/api/v1/validations", json=body)
        if response.status_code == 409:
            error = _json(response).get("error", {})
            existing = error.get("validation_id")
            if isinstance(existing, int):
                return Submitted(existing, True, _json(response))
        _raise_for(response)
        data = _json(response)
        return Submitted(int(data["validation_id"]), False, data)

    def validation(self, validation_id: int) -> dict[str, Any]:
        response = self._request("GET", f"/api/v1/validations/{validation_id}")
        _raise_for(response)
        return _json(response)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiUnavailableError(
                f"cannot reach {self.server}: {type(exc).__name__}: {exc}"
            ) from None


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _raise_for(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    error = _json(response).get("error", {})
    message = error.get("message") if isinstance(error, dict) else None
    text = f"HTTP {response.status_code}: {message or response.reason_phrase}"
    if response.status_code >= 500:
        raise ApiUnavailableError(text)
    raise InputError(text)
