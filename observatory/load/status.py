"""The live status of a load run: a small JSON file the master rewrites every few seconds.

Written to a temporary file and renamed over ``status.json``, so a reader sees either the
old or the new document, never half of one. The run pipeline reads it for its progress
line (elapsed, RPS, p99, errors, in-flight).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

STATUS_NAME: Final = "status.json"


def write_status(path: Path, status: dict[str, Any]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(status, separators=(",", ":"), sort_keys=True))
    temporary.replace(path)


def read_status(path: Path) -> dict[str, Any]:
    """The last status written, or {} when none has been written yet."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
