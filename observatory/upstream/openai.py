"""The OpenAI dialect: chat completions (JSON and SSE), embeddings, models, errors.

Bodies are assembled from pre-serialised pieces: the generated text is plain ASCII
without quotes or backslashes, so it is embedded without a JSON encoder call.
"""

from __future__ import annotations

import base64
import json
import struct
from functools import lru_cache

from observatory.errors import InputError
from observatory.upstream.completion import (
    Body,
    Completion,
    StreamBody,
    new_completion,
    require_list,
    require_model,
)
from observatory.upstream.tokens import estimate_tokens, messages_texts, split_text

MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "text-embedding-3-small")
DEFAULT_DIMENSIONS = 16
MAX_DIMENSIONS = 4096
FINGERPRINT = "fp_observatory_mock"
DONE = b"data: [DONE]\n\n"

_ERRORS = {
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", "internal_error"),
    503: ("server_error", "service_unavailable"),
}


def parse_chat(body: Body, number: int, default_tokens: int) -> Completion:
    messages = require_list(body, "messages")
    return new_completion(
        body,
        number,
        messages_texts(messages),
        ("max_completion_tokens", "max_tokens"),
        default_tokens,
    )


def chat_json(c: Completion) -> bytes:
    return (
        f'{{"id":"chatcmpl-{c.number:016x}","object":"chat.completion","created":{c.created},'
        f'"model":{json.dumps(c.model)},"system_fingerprint":"{FINGERPRINT}",'
        f'"choices":[{{"index":0,"message":{{"role":"assistant","content":"{c.text}",'
        f'"refusal":null}},"logprobs":null,"finish_reason":"stop"}}],'
        f'"usage":{_usage(c)}}}'
    ).encode()


def _usage(c: Completion) -> str:
    return (
        f'{{"prompt_tokens":{c.prompt_tokens},"completion_tokens":{c.completion_tokens},'
        f'"total_tokens":{c.total_tokens}}}'
    )


def chat_stream(c: Completion, chunks: int) -> StreamBody:
    """Content chunks (the role rides on the first one, so the first chunk a client sees
    already carries content), a finish chunk, the usage chunk if asked, then [DONE]."""
    prefix = (
        f'data: {{"id":"chatcmpl-{c.number:016x}","object":"chat.completion.chunk",'
        f'"created":{c.created},"model":{json.dumps(c.model)},'
        f'"system_fingerprint":"{FINGERPRINT}","choices":[{{"index":0,"delta":{{'
    )
    pieces = split_text(c.text, chunks)
    out = [f'{prefix}"role":"assistant","content":"{pieces[0]}"{_CHUNK_END}']
    out.extend(f'{prefix}"content":"{piece}"{_CHUNK_END}' for piece in pieces[1:])
    tail = f'{prefix}}},"logprobs":null,"finish_reason":"stop"}}]}}\n\n'
    if c.include_usage:
        tail += prefix.split('"choices"')[0] + f'"choices":[],"usage":{_usage(c)}}}\n\n'
    return StreamBody(b"", [line.encode() for line in out], tail.encode() + DONE)


_CHUNK_END = '},"logprobs":null,"finish_reason":null}]}\n\n'


def embeddings_json(body: Body) -> bytes:
    """One vector per input; ``dimensions`` sizes them, ``encoding_format`` may be base64."""
    model = require_model(body)
    inputs, tokens = _embedding_inputs(body.get("input"))
    vector = _vector(_dimensions(body), _encoding(body))
    data = ",".join(
        f'{{"object":"embedding","index":{i},"embedding":{vector}}}' for i in range(inputs)
    )
    return (
        f'{{"object":"list","data":[{data}],"model":{json.dumps(model)},'
        f'"usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}'
    ).encode()


def _embedding_inputs(value: object) -> tuple[int, int]:
    """(number of inputs, prompt tokens): strings are estimated, token arrays counted."""
    if isinstance(value, str):
        return 1, estimate_tokens(value)
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return 1, len(value)
        if all(isinstance(v, str) for v in value):
            return len(value), sum(estimate_tokens(v) for v in value)
        if all(isinstance(v, list) for v in value):
            return len(value), sum(len(v) for v in value)
    raise InputError(
        f"input: expected a string, a list of strings or token arrays, got {type(value).__name__}"
    )


def _dimensions(body: Body) -> int:
    value = body.get("dimensions", DEFAULT_DIMENSIONS)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMENSIONS:
        raise InputError(f"dimensions: expected an integer 1..{MAX_DIMENSIONS}, got {value!r}")
    return value


def _encoding(body: Body) -> str:
    # OpenAI treats an explicit null as the default; LiteLLM forwards one.
    value = body.get("encoding_format") or "float"
    if value not in ("float", "base64"):
        raise InputError(f"encoding_format: expected 'float' or 'base64', got {value!r}")
    return str(value)


@lru_cache(maxsize=64)
def _vector(dimensions: int, encoding: str) -> str:
    """A fixed unit vector, serialised once per (dimensions, encoding)."""
    values = [1.0 / dimensions**0.5] * dimensions
    if encoding == "base64":
        packed = struct.pack(f"<{dimensions}f", *values)
        return f'"{base64.b64encode(packed).decode()}"'
    return json.dumps(values, separators=(",", ":"))


MODELS_JSON = json.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "observatory"}
            for m in MODELS
        ],
    },
    separators=(",", ":"),
).encode()


def error_json(status: int, message: str) -> bytes:
    kind, code = _ERRORS.get(status, ("invalid_request_error", None))
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        separators=(",", ":"),
    ).encode()
