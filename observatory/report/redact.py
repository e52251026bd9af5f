"""Last line of defence against secrets in a report.

Callers redact before they hand a config over; this pass catches what slips through, by
key name, so a report never shows a gateway master key, a Slack URL or a database password.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "<redacted>"
# Whole words only, so "max_tokens" or "monkey" stay visible while "master_key" does not.
SECRET_KEY = re.compile(
    r"(^|[-_.])(key|token|secret|password|passwd|webhook|authorization|credentials?|dsn"
    r"|database_url|cookie)($|[-_.])",
    re.IGNORECASE,
)
# Credentials embedded in URLs: scheme://user:password@host
URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)
# Secrets that travel inside free text (error bodies, commands): bearer tokens, OpenAI-style
# keys, Slack webhook paths and tokens.
SECRET_TEXT = re.compile(
    r"(Bearer\s+\S+|\bsk-[A-Za-z0-9_-]{6,}|hooks\.slack\.com/\S+|\bxox[abprs]-[A-Za-z0-9-]+)",
    re.IGNORECASE,
)


def redact(value: Any) -> Any:
    """A copy of ``value`` with secret-looking keys and URL passwords replaced."""
    if isinstance(value, Mapping):
        return {str(k): REDACTED if _secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """``text`` with URL passwords and secret-looking tokens replaced."""
    text = URL_PASSWORD.sub(lambda m: f"{m.group('head')}{REDACTED}@", text)
    return SECRET_TEXT.sub(REDACTED, text)


def _secret_key(key: object) -> bool:
    return bool(SECRET_KEY.search(str(key)))
