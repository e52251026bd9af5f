"""A liveness probe run by the orchestrator during a fault, as a Kubernetes kubelet would.

It measures what an orchestrator of the gateway would see: how long the health endpoint
takes, and how often it fails to answer within the probe's timeout, once per interval.
Bounded: it stops when told to, and never sends more than one probe at a time.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import httpx
import numpy as np

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
TIMEOUT_S = 5.0


class HealthProbe:
    """``start()`` probes ``base_url + path`` every ``interval`` s until ``stop()``."""

    def __init__(
        self,
        base_url: str,
        path: str = "/health/liveliness",
        *,
        api_key: str = "",
        interval: float = INTERVAL_S,
        timeout: float = TIMEOUT_S,
    ) -> None:
        self.url = base_url.rstrip("/") + path
        self.path = path
        self.interval = interval
        self.timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._latencies_ms: list[float] = []
        self._failures: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="health-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout + self.interval + 1.0)

    def summary(self) -> dict[str, Any]:
        """Probes sent, failures by kind, and latency percentiles of the answered ones."""
        values = np.array(self._latencies_ms, dtype=float)
        answered: dict[str, Any] = {}
        if values.size:
            answered = {
                "p50_ms": round(float(np.percentile(values, 50)), 3),
                "p95_ms": round(float(np.percentile(values, 95)), 3),
                "max_ms": round(float(values.max()), 3),
            }
        failures = sum(self._failures.values())
        return {
            "path": self.path,
            "probes": int(values.size) + failures,
            "failures": dict(self._failures),
            **answered,
        }

    def _loop(self) -> None:
        with httpx.Client(timeout=self.timeout, headers=self._headers) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                self._probe(client)
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def _probe(self, client: httpx.Client) -> None:
        began = time.perf_counter()
        try:
            response = client.get(self.url)
        except httpx.TimeoutException:
            self._fail("timeout")
            return
        except httpx.HTTPError as exc:
            self._fail(type(exc).__name__)
            return
        if response.is_success:
            self._latencies_ms.append((time.perf_counter() - began) * 1000.0)
        else:
            self._fail(f"http_{response.status_code}")

    def _fail(self, kind: str) -> None:
        self._failures[kind] = self._failures.get(kind, 0) + 1
