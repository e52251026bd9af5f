"""The test process's own children, for "nothing left running" checks."""

from __future__ import annotations

import psutil


def children_of_us() -> list[psutil.Process]:
    """Live children of this process, except multiprocessing's resource tracker.

    The tracker is started once by the first "spawn" pool of the session (e.g. the histogram
    merge test) and lives as long as the interpreter does, by design.
    """
    return [p for p in psutil.Process().children(recursive=True) if _ours(p)]


def _ours(process: psutil.Process) -> bool:
    try:
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return "multiprocessing.resource_tracker" not in " ".join(process.cmdline())
    except psutil.Error:
        return False  # gone while we looked
