"""Server-sent events of the three streaming dialects, parsed into content timings.

Definitions (also in docs/scenarios.md), the same for every dialect:

- a *content chunk* is an event that carries non-empty output text: OpenAI chat
  ``choices[].delta.content``, Responses ``response.output_text.delta``, Anthropic
  ``content_block_delta`` with a ``text_delta``;
- *TTFT* is from the send (open model: the intended send) to the first content chunk;
- *inter-chunk* gaps are every gap between consecutive content chunks (not averaged);
- the stream is complete at OpenAI's ``data: [DONE]``, Responses' ``response.completed``
  or Anthropic's ``message_stop``; a stream that ends without it is a bad body;
- *tokens* are the completion tokens the usage block reports, else the content chunks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

DIALECTS: Final = ("chat", "responses", "anthropic")


class BadBodyError(Exception):
    """The response body is not what the API promises (bad JSON, SSE or no terminator)."""


@dataclass(slots=True)
class Event:
    """What one SSE event means for the timings."""

    content: bool = False  # carries non-empty output text
    done: bool = False  # the terminator of the stream
    tokens: int | None = None  # completion tokens, when the event reports usage


class SseParser:
    """Feed it lines (bytes, with or without the newline); it yields Events."""

    def __init__(self, dialect: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"dialect {dialect!r}; accepted: {', '.join(DIALECTS)}")
        self.dialect = dialect
        self._event_name = ""
        self._data: list[bytes] = []

    def feed(self, line: bytes) -> Event | None:
        """The Event completed by this line (a blank line ends an event), else None."""
        line = line.rstrip(b"\r\n")
        if not line:
            return self._dispatch()
        if line.startswith(b"data:"):
            self._data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            self._event_name = line[6:].strip().decode("utf-8", "replace")
        elif not line.startswith(b":") and b":" not in line:
            # ":" lines are keep-alive comments; other "field:" lines are ignored
            raise BadBodyError(f"not an SSE line: {line[:80]!r}")
        return None

    def finish(self) -> Event | None:
        """The event still buffered when the body ended without a blank line."""
        return self._dispatch()

    def _dispatch(self) -> Event | None:
        if not self._data:
            self._event_name = ""
            return None
        data = b"\n".join(self._data)
        name, self._event_name, self._data = self._event_name, "", []
        if self.dialect == "chat":
            return _chat(data)
        payload = _json(data)
        kind = str(payload.get("type") or name)
        if self.dialect == "responses":
            return _responses(kind, payload)
        return _anthropic(kind, payload)


def _json(data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data)
    except ValueError:
        raise BadBodyError(f"event data is not JSON: {data[:80]!r}") from None
    if not isinstance(payload, dict):
        raise BadBodyError(f"event data is not a JSON object: {data[:80]!r}")
    return payload


def _chat(data: bytes) -> Event:
    if data == b"[DONE]":
        return Event(done=True)
    payload = _json(data)
    if "error" in payload:
        raise BadBodyError(f"error event in stream: {str(payload['error'])[:200]}")
    event = Event()
    for choice in payload.get("choices") or ():
        delta = choice.get("delta") or {}
        if delta.get("content"):
            event.content = True
    usage = payload.get("usage")
    if isinstance(usage, dict) and usage.get("completion_tokens") is not None:
        event.tokens = int(usage["completion_tokens"])
    return event


def _responses(kind: str, payload: dict[str, Any]) -> Event:
    if kind == "response.output_text.delta":
        return Event(content=bool(payload.get("delta")))
    if kind == "response.completed":
        usage = (payload.get("response") or {}).get("usage") or {}
        tokens = usage.get("output_tokens")
        return Event(done=True, tokens=None if tokens is None else int(tokens))
    if kind in ("response.failed", "error"):
        raise BadBodyError(f"{kind} event in stream: {str(payload)[:200]}")
    return Event()


def _anthropic(kind: str, payload: dict[str, Any]) -> Event:
    if kind == "content_block_delta":
        delta = payload.get("delta") or {}
        return Event(content=delta.get("type") == "text_delta" and bool(delta.get("text")))
    if kind == "message_delta":
        tokens = (payload.get("usage") or {}).get("output_tokens")
        return Event(tokens=None if tokens is None else int(tokens))
    if kind == "message_stop":
        return Event(done=True)
    if kind == "error":
        raise BadBodyError(f"error event in stream: {str(payload.get('error'))[:200]}")
    return Event()
