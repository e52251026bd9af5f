"""Failure signatures: a failure message with its variable parts collapsed.

Two failures with the same category and signature are "the same error": request ids,
UUIDs, hex addresses, short quoted values, ports, addresses and numbers differ between
occurrences of one bug, the words around them do not. The load generator counts failures
per signature and the analysis re-derives the signature from a stored sample message, so
both call ``signature`` (pure, no I/O).
"""

from __future__ import annotations

import re

MAX_SIGNATURE_CHARS = 240
OVERFLOW = "(other messages)"  # the catch-all once a window holds too many signatures

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b[a-z][a-z0-9+.\-]*://\S+"), "<url>"),
    (re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<addr>"),
    (re.compile(r"(?i)\b(?:localhost|[a-z0-9\-]+(?:\.[a-z0-9\-]+)+):\d{2,5}\b"), "<addr>"),
    (re.compile(r"(?i)\b0x[0-9a-f]+\b"), "<hex>"),
    (re.compile(r"(?i)\b(?=[0-9a-f_\-]*\d)(?=[0-9a-f_\-]*[a-f])[0-9a-f_\-]{8,}\b"), "<hex>"),
    (re.compile(r"(?i)\b[a-z]+[_\-](?=[a-z0-9]*\d)[a-z0-9]{6,}\b"), "<id>"),
    # A short quoted value (no spaces), unless it is a JSON key (followed by a colon).
    (re.compile(r"(['\"])[\w.\-/@+]{1,64}\1(?!\s*:)"), r"\1<q>\1"),
    (re.compile(r"(?i)(?<![\w.])\d+(?:\.\d+)?(?:ms|s|[kmg]i?b)?(?!\w)"), "<n>"),
)


def signature(message: str) -> str:
    """``message`` with its variable parts collapsed, whitespace folded, then shortened."""
    text = message
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    if len(text) > MAX_SIGNATURE_CHARS:
        text = text[: MAX_SIGNATURE_CHARS - 3] + "..."
    return text
