"""The OpenAI Responses API dialect: one message output item, JSON or SSE events."""

from __future__ import annotations

import json

from observatory.errors import InputError
from observatory.upstream.completion import Body, Completion, StreamBody, new_completion
from observatory.upstream.tokens import content_texts, messages_texts, split_text


def parse_responses(body: Body, number: int, default_tokens: int) -> Completion:
    prompt = _input_texts(body.get("input"))
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        prompt.append(instructions)
    return new_completion(body, number, prompt, ("max_output_tokens",), default_tokens)


def _input_texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        return messages_texts(value) + content_texts(value)
    raise InputError(f"input: expected a string or a non-empty list of items, got {value!r}")


def responses_json(c: Completion) -> bytes:
    return json.dumps(_response(c, "completed", c.text), separators=(",", ":")).encode()


def _response(c: Completion, status: str, text: str | None) -> dict[str, object]:
    done = text is not None
    return {
        "id": f"resp_{c.number:016x}",
        "object": "response",
        "created_at": c.created,
        "status": status,
        "model": c.model,
        "output": [_item(c, text)] if done else [],
        "usage": _usage(c) if done else None,
        "error": None,
        "incomplete_details": None,
    }


def _item(c: Completion, text: str | None) -> dict[str, object]:
    return {
        "type": "message",
        "id": f"msg_{c.number:016x}",
        "status": "completed" if text is not None else "in_progress",
        "role": "assistant",
        "content": [] if text is None else [_part(text)],
    }


def _part(text: str) -> dict[str, object]:
    return {"type": "output_text", "text": text, "annotations": []}


def _usage(c: Completion) -> dict[str, object]:
    return {
        "input_tokens": c.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": c.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": c.total_tokens,
    }


def responses_stream(c: Completion, chunks: int) -> StreamBody:
    """Events: created, in_progress, output_item.added, content_part.added, one
    output_text.delta per chunk, output_text.done, content_part.done, output_item.done,
    completed; each with its ``sequence_number``."""
    item_id = f"msg_{c.number:016x}"
    pieces = split_text(c.text, chunks)
    head: list[tuple[str, dict[str, object]]] = [
        ("response.created", {"response": _response(c, "in_progress", None)}),
        ("response.in_progress", {"response": _response(c, "in_progress", None)}),
        ("response.output_item.added", {"output_index": 0, "item": _item(c, None)}),
        ("response.content_part.added", {**_where(item_id), "part": _part("")}),
    ]
    deltas: list[tuple[str, dict[str, object]]] = [
        ("response.output_text.delta", {**_where(item_id), "delta": p}) for p in pieces
    ]
    tail: list[tuple[str, dict[str, object]]] = [
        ("response.output_text.done", {**_where(item_id), "text": c.text}),
        ("response.content_part.done", {**_where(item_id), "part": _part(c.text)}),
        ("response.output_item.done", {"output_index": 0, "item": _item(c, c.text)}),
        ("response.completed", {"response": _response(c, "completed", c.text)}),
    ]
    events = [_event(name, data, seq) for seq, (name, data) in enumerate(head + deltas + tail)]
    return StreamBody(
        b"".join(events[: len(head)]),
        events[len(head) : len(head) + len(deltas)],
        b"".join(events[len(head) + len(deltas) :]),
    )


def _where(item_id: str) -> dict[str, object]:
    return {"item_id": item_id, "output_index": 0, "content_index": 0}


def _event(name: str, data: dict[str, object], sequence: int) -> bytes:
    payload = json.dumps({"type": name, "sequence_number": sequence, **data}, separators=(",", ":"))
    return f"event: {name}\ndata: {payload}\n\n".encode()
