"""Helpers shared by the build tests (imported by path: tests/builds is on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import psutil

FAKE_GATEWAY = Path(__file__).with_name("fake_gateway.py")
MASTER_KEY = "sk-test-master-key-4f1c9a"


def command_template(*flags: str) -> str:
    """A command build of the fake gateway, with its placeholders and extra flags."""
    return (
        f"{sys.executable} {FAKE_GATEWAY} --host {{host}} --port {{port}} --config {{config}} "
        + " ".join(flags)
    )


def assert_all_gone(pids: list[int]) -> None:
    alive = [pid for pid in pids if _alive(pid)]
    assert not alive, f"processes left behind: {alive}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
