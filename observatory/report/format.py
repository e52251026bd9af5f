"""How times and durations read on a report page."""

from __future__ import annotations

from datetime import UTC, datetime

from observatory.durations import format_duration


def duration(seconds: float | None) -> str:
    """Seconds as "1h30m"; empty when unknown."""
    if seconds is None:
        return ""
    return format_duration(max(0.0, float(seconds)))


def timestamp(value: datetime | None) -> str:
    """A UTC timestamp to the second; empty when unknown."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def day(value: datetime | None) -> str:
    """The UTC date, as the index filters compare it."""
    if value is None:
        return ""
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d")
