"""What a JSON response body says: a JSON object, and its usage (completion tokens).

A 200 response whose body is not a JSON object is a *bad body* failure, not a success:
a gateway that answers HTML from a proxy, an empty body or a truncated one is broken.

Parsing every body in full would cost the load generator about as much CPU as a fifth of
a whole plain Locust request, so ``BodyCheck`` checks every body's shape (a JSON object:
``{`` ... ``}``, which catches empty, HTML and truncated bodies) and reads the usage with
a regular expression, and parses one body in ``full_every`` completely, which catches a
gateway that systematically answers malformed JSON within a few requests.
"""

from __future__ import annotations

import json
import re
from typing import Any

from observatory.load.sse import BadBodyError

_WHITESPACE = b" \t\r\n"
_NUMBER = re.compile(rb"\s*:\s*(\d+)")


def json_object(content: bytes) -> dict[str, Any]:
    """The parsed body; BadBodyError when it is not a JSON object."""
    try:
        payload = json.loads(content)
    except ValueError:
        raise BadBodyError(f"response is not JSON: {content[:80]!r}") from None
    if not isinstance(payload, dict):
        raise BadBodyError(f"response is not a JSON object: {content[:80]!r}")
    return payload


def usage_tokens(payload: dict[str, Any], fields: tuple[str, ...]) -> int | None:
    """The first of ``fields`` in the body's ``usage`` block (None when absent)."""
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    for field in fields:
        value = usage.get(field)
        if isinstance(value, int):
            return value
    return None


class BodyCheck:
    """Checks JSON bodies and reads their usage tokens; parses one in ``full_every``."""

    def __init__(self, full_every: int = 16) -> None:
        self.full_every = max(1, full_every)
        self._seen = 0

    def tokens(self, content: bytes, fields: tuple[str, ...]) -> int | None:
        """Usage tokens of a JSON object body (None if absent); BadBodyError otherwise."""
        self._seen += 1
        if self._seen % self.full_every == 0:
            return usage_tokens(json_object(content), fields)
        body = content
        if not (body[:1] == b"{" and body[-1:] == b"}"):
            body = content.strip(_WHITESPACE)
            if not (body[:1] == b"{" and body[-1:] == b"}"):
                raise BadBodyError(f"response is not a JSON object: {content[:80]!r}")
        for field in fields:
            key = b'"' + field.encode() + b'"'
            at = body.rfind(key)  # usage comes last in every dialect's body
            match = _NUMBER.match(body, at + len(key)) if at >= 0 else None
            if match is not None:
                return int(match.group(1))
        return None
