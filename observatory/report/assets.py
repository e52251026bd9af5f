"""Files of a report directory: shared static assets and atomic page writes."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from markupsafe import Markup

from observatory.errors import ObservatoryError
from observatory.settings import PROJECT_ROOT

REPORTS_DIR = PROJECT_ROOT / "reports"
TEMPLATES_DIR = REPORTS_DIR / "templates"
STATIC_DIR = REPORTS_DIR / "static"


class ReportWriteError(ObservatoryError):
    """A report file could not be written (disk full, permissions)."""


def publish_static(out_dir: Path) -> Path:
    """Copy the shared assets into ``out_dir/static`` when missing or changed; return it."""
    target = out_dir / "static"
    for source in sorted(STATIC_DIR.iterdir()):
        if source.is_file():
            data = source.read_bytes()
            destination = target / source.name
            if not destination.is_file() or destination.read_bytes() != data:
                write_atomic(destination, data)
    return target


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write via a temporary file and a rename, so a reader never sees half a file."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ReportWriteError(f"cannot write report file {path}: {exc.strerror}") from exc


def script_json(payload: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no string can close the tag.

    Escaping <, > and & as \\u sequences keeps "</script>" and "<!--" out of the markup
    while JSON.parse still returns the original strings.
    """
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)  # noqa: S704 - every character that could end the script is escaped
