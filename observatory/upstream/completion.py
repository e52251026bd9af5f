"""One generated answer, whatever the API dialect, and the parts of a streamed body."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from observatory.errors import InputError
from observatory.upstream.tokens import (
    MAX_COMPLETION_TOKENS,
    completion_text,
    estimate_many,
    estimate_tokens,
)

Body = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class Completion:
    """What the mock answers: ``text`` has exactly ``completion_tokens`` tokens."""

    number: int
    model: str
    created: int
    prompt_tokens: int
    text: str
    stream: bool
    include_usage: bool

    @property
    def completion_tokens(self) -> int:
        return estimate_tokens(self.text)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class StreamBody:
    """A stream in three parts: ``head`` goes out with the headers, one ``chunks`` item
    per content chunk on the chunk schedule, ``tail`` right after the last chunk."""

    head: bytes
    chunks: list[bytes]
    tail: bytes


def new_completion(
    body: Body, number: int, prompt: list[str], size_fields: tuple[str, ...], default_tokens: int
) -> Completion:
    """A Completion for ``body``: prompt tokens from ``prompt``, answer sized by the first
    of ``size_fields`` present in the request (else ``default_tokens``)."""
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return Completion(
        number=number,
        model=require_model(body),
        created=int(time.time()),
        prompt_tokens=estimate_many(prompt),
        text=completion_text(answer_tokens(body, size_fields, default_tokens)),
        stream=body.get("stream") is True,
        include_usage=include_usage,
    )


def require_model(body: Body) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InputError(f"model: expected a non-empty string, got {model!r}")
    return model


def answer_tokens(body: Body, fields: tuple[str, ...], default: int) -> int:
    """Answer length: the first size field present, capped at MAX_COMPLETION_TOKENS."""
    for name in fields:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name}: expected a positive integer, got {value!r}")
        return min(value, MAX_COMPLETION_TOKENS)
    return min(default, MAX_COMPLETION_TOKENS)


def require_list(body: Body, name: str) -> list[object]:
    value = body.get(name)
    if not isinstance(value, list) or not value:
        raise InputError(f"{name}: expected a non-empty list, got {_short(value)}")
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
