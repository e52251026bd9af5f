"""Environment fingerprints: baselines are only compared on like hosts and like configs."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
from importlib import metadata
from typing import Any

import psutil

from observatory.settings import Settings


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def host_facts() -> dict[str, Any]:
    """What the host is: the things that change a latency distribution."""
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "locust": _version("locust"),
        "observatory": _version("observatory"),
    }


def host_fingerprint(facts: dict[str, Any]) -> str:
    """A short hash of the facts that make two hosts comparable (not versions of tools)."""
    keys = ("hostname", "cpu_model", "cpu_count", "memory_gb")
    return _digest({k: facts.get(k) for k in keys})


def measurement_hash(settings: Settings, scenario: str, gateway: str, duration_s: float) -> str:
    """Hash of what shapes a run's numbers: upstream model, gateway config, scenario, load."""
    payload = {
        "duration_s": duration_s,
        "upstream": settings.upstream.model_dump(mode="json"),
        "gateway": settings.gateways[gateway].model_dump(mode="json", exclude={"master_key"}),
        "scenario": settings.scenario(scenario).model_dump(
            mode="json", exclude={"thresholds", "duration"}
        ),
        "load": settings.load.model_dump(mode="json", exclude={"master_host"}),
    }
    return _digest(payload)


def _digest(payload: object) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
