"""Data plane, control plane and health probes: which request names a fault phase is judged on.

Request names say which is which (``observatory.faults.names``): ``control:<path>`` for the
control-plane pressure itself, ``health:<path>`` for health probes, anything else is data
plane. A phase is judged on its data plane: a control-plane request timing out under its own
pressure is the fault, not its effect, and a health probe is reported on its own
(``analysis.phase_checks``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from observatory.analysis.metrics import RunView
from observatory.faults.names import is_control, is_data_plane, is_health

__all__ = ["is_control", "is_data_plane", "is_health", "select"]


def select(run: RunView, keep: Callable[[str], bool]) -> RunView:
    """``run`` with only the request names ``keep`` accepts (window counts unchanged)."""
    groups = {key: rows for key, rows in run.groups.items() if keep(key[1])}
    return replace(run, groups=groups, names=tuple(n for n in run.names if keep(n)))
