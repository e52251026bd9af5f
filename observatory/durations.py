"""Human durations: "90s", "1h30m", "24h", "250ms", "2d" <-> seconds."""

from __future__ import annotations

import math
import re

from observatory.errors import InputError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
ACCEPTED = 'a number of seconds or a string such as "250ms", "90s", "1h30m", "24h", "2d"'


def parse_duration(value: object) -> float:
    """Return seconds for ``value``; raise InputError naming what is accepted."""
    if isinstance(value, bool):
        raise InputError(f"bad duration {value!r}; expected {ACCEPTED}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise InputError(f"bad duration {value!r}; expected {ACCEPTED}")
    if not math.isfinite(seconds):
        raise InputError(f"bad duration {value!r}; expected {ACCEPTED}")
    if seconds < 0:
        raise InputError(f"bad duration {value!r}; must not be negative")
    return seconds


def _parse_text(text: str) -> float:
    compact = text.strip().replace(" ", "").lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", compact):
        return float(compact)
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise InputError(f"bad duration {text!r}; expected {ACCEPTED}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def format_duration(seconds: float) -> str:
    """Format seconds compactly: 5400 -> "1h30m", 0.25 -> "250ms"."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    total = round(seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out) or "0s"
