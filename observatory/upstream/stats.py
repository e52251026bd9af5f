"""Counters the admin endpoint reports: requests per endpoint, faults per kind, in flight."""

from __future__ import annotations

import time
from collections import Counter

ENDPOINTS = ("chat_completions", "embeddings", "responses", "models", "messages", "not_found")
FAULT_KINDS = ("error_429", "error_500", "error_503", "stall", "reset")


class Stats:
    """Plain counters: the app runs on one event loop, so no lock is needed."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.in_flight = 0
        self.since = time.time()

    def reset(self) -> None:
        """Zero the counters; requests in flight stay counted as in flight."""
        self.requests.clear()
        self.faults.clear()
        self.since = time.time()

    def snapshot(self) -> dict[str, object]:
        return {
            "requests": {name: self.requests[name] for name in ENDPOINTS},
            "requests_total": sum(self.requests.values()),
            "faults": {kind: self.faults[kind] for kind in FAULT_KINDS},
            "in_flight": self.in_flight,
            "since": self.since,
        }
