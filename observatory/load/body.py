"""What a JSON response body says: a JSON object, and its usage (completion tokens).

A 200 response whose body is not a JSON object is a *bad body* failure, not a success:
a gateway that answers HTML from a proxy, an empty body or a truncated one is broken.
"""

from __future__ import annotations

import json
from typing import Any

from observatory.load.sse import BadBodyError


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
