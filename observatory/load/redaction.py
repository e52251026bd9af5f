"""Scrub secrets from failure messages before they leave the load generator."""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_MESSAGE_CHARS = 300
REDACTED = "<redacted>"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization / proxy headers, whatever the scheme (Bearer, Basic, raw keys).
    (
        re.compile(r"(?i)\b(proxy-)?authorization\b(['\"]?\s*[:=]\s*['\"]?)[^'\",\r\n}]+"),
        rf"\1authorization\2{REDACTED}",
    ),
    # Headers, JSON fields and query parameters that carry API keys or tokens.
    (
        re.compile(
            r"(?i)\b(x-api-key|api[-_]?key|access[-_]?token|secret|password|token)"
            r"(['\"]?\s*[:=]\s*['\"]?)[^'\"&\s,}]+"
        ),
        rf"\1\2{REDACTED}",
    ),
    # OpenAI / LiteLLM / Anthropic style keys anywhere in free text.
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{3,}"), f"sk-{REDACTED}"),
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/\-]+=*"), f"Bearer {REDACTED}"),
    # Credentials embedded in URLs: scheme://user:pass@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s:@]+:[^/\s@]+@"), rf"\1{REDACTED}@"),
)


def redact(message: str, secrets: Iterable[str] = (), limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` with known secrets and secret-looking tokens replaced, then shortened."""
    text = message
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text
