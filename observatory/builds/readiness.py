"""Is a gateway up? Readiness probes for started gateways and reachability of URL builds.

Probe order (the first path answering 2xx wins; 404/405 moves on to the next path):

- LiteLLM: ``/health/liveliness`` only. Its ``/health`` calls every model upstream and
  would put load on the mock upstream before the run starts.
- Any other gateway: ``/health/liveliness``, ``/health``, ``/v1/models``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import httpx

from observatory.errors import BuildError

LITELLM_PATHS = ("/health/liveliness",)
GENERIC_PATHS = ("/health/liveliness", "/health", "/v1/models")
POLL_INTERVAL = 0.25


def probe_paths(gateway_kind: str) -> tuple[str, ...]:
    return LITELLM_PATHS if gateway_kind == "litellm" else GENERIC_PATHS


def probe(
    client: httpx.Client, base_url: str, paths: Sequence[str], headers: dict[str, str]
) -> str | None:
    """The first path that answers 2xx, or None; connection errors propagate."""
    for path in paths:
        response = client.get(base_url + path, headers=headers)
        if response.is_success:
            return path
    return None


def wait_ready(
    base_url: str,
    paths: Sequence[str],
    *,
    timeout: float,
    headers: dict[str, str],
    failed: Callable[[], str | None],
) -> str:
    """Poll until a probe path answers 2xx; BuildError on timeout or when ``failed()`` says
    why the gateway can no longer become ready (it exited). Returns the path that answered.
    """
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while True:
            reason = failed()
            if reason is not None:
                raise BuildError(f"gateway at {base_url} {reason}")
            try:
                path = probe(client, base_url, paths, headers)
                if path is not None:
                    return path
                last = f"no 2xx from {', '.join(paths)}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() >= deadline:
                raise BuildError(
                    f"gateway at {base_url} not ready within {timeout:g}s "
                    f"(readiness_timeout); last probe: {last}"
                )
            time.sleep(POLL_INTERVAL)


def check_reachable(
    base_url: str, paths: Sequence[str], *, headers: dict[str, str], timeout: float = 5.0
) -> str:
    """For a gateway we do not run: one round of probes, a clear error naming the URL."""
    try:
        with httpx.Client(timeout=timeout) as client:
            path = probe(client, base_url, paths, headers)
    except httpx.HTTPError as exc:
        raise BuildError(
            f"gateway at {base_url} is unreachable: {type(exc).__name__}: {exc or 'no detail'}"
        ) from exc
    if path is None:
        raise BuildError(
            f"gateway at {base_url} answers but is not healthy: no 2xx from {', '.join(paths)}"
        )
    return path
