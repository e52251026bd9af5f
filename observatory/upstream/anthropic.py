"""The Anthropic Messages dialect: JSON and the SSE event sequence, and its errors."""

from __future__ import annotations

import json

from observatory.upstream.completion import (
    Body,
    Completion,
    StreamBody,
    new_completion,
    require_list,
)
from observatory.upstream.tokens import content_texts, messages_texts, split_text

_ERRORS = {429: "rate_limit_error", 500: "api_error", 503: "overloaded_error"}


def parse_messages(body: Body, number: int, default_tokens: int) -> Completion:
    prompt = messages_texts(require_list(body, "messages"))
    prompt.extend(content_texts(body.get("system")))
    return new_completion(body, number, prompt, ("max_tokens",), default_tokens)


def messages_json(c: Completion) -> bytes:
    message = _message(c, [{"type": "text", "text": c.text}], "end_turn", c.completion_tokens)
    return json.dumps(message, separators=(",", ":")).encode()


def _message(
    c: Completion, content: list[dict[str, str]], stop: str | None, output_tokens: int
) -> dict[str, object]:
    return {
        "id": f"msg_mock{c.number:016x}",
        "type": "message",
        "role": "assistant",
        "model": c.model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": c.prompt_tokens, "output_tokens": output_tokens},
    }


def messages_stream(c: Completion, chunks: int) -> StreamBody:
    """message_start, content_block_start, one content_block_delta per chunk, then
    content_block_stop, message_delta (stop reason, output tokens) and message_stop."""
    head = _event("message_start", {"message": _message(c, [], None, 1)})
    head += _event(
        "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
    )
    deltas = [
        _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
        for p in split_text(c.text, chunks)
    ]
    tail = _event("content_block_stop", {"index": 0})
    tail += _event(
        "message_delta",
        {
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": c.completion_tokens},
        },
    )
    tail += _event("message_stop", {})
    return StreamBody(head, deltas, tail)


def _event(name: str, data: dict[str, object]) -> bytes:
    payload = json.dumps({"type": name, **data}, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode()


def error_json(status: int, message: str) -> bytes:
    kind = _ERRORS.get(status, "invalid_request_error")
    return json.dumps(
        {"type": "error", "error": {"type": kind, "message": message}}, separators=(",", ":")
    ).encode()
