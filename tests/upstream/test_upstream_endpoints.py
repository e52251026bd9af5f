"""Every endpoint answers with the right shape, with and without /v1; usage adds up."""

from __future__ import annotations

import base64
import struct

import httpx
import pytest

from observatory.upstream.tokens import estimate_tokens

PREFIXES = ["/v1", ""]
PROMPT = "Tell me about gateways, please."  # 31 characters -> 8 tokens


@pytest.mark.parametrize("prefix", PREFIXES)
def test_chat_completion_shape_and_usage(fast: httpx.Client, prefix: str) -> None:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}]}
    response = fast.post(f"{prefix}/chat/completions", json={**body, "max_tokens": 7})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert float(response.headers["x-upstream-service-time-ms"]) >= 0
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["id"].startswith("chatcmpl-")
    assert data["model"] == "gpt-4o-mini"
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["finish_reason"] == "stop"
    content = choice["message"]["content"]
    assert data["usage"] == {
        "prompt_tokens": estimate_tokens(PROMPT),
        "completion_tokens": 7,
        "total_tokens": estimate_tokens(PROMPT) + 7,
    }
    assert estimate_tokens(content) == 7


def test_prompt_tokens_count_every_message_and_text_part(fast: httpx.Client) -> None:
    messages = [
        {"role": "system", "content": "abcd" * 3},
        {"role": "user", "content": [{"type": "text", "text": "efgh" * 2}, {"type": "image"}]},
    ]
    data = fast.post("/v1/chat/completions", json={"model": "m", "messages": messages}).json()
    assert data["usage"]["prompt_tokens"] == 5


def test_max_completion_tokens_wins_over_max_tokens(fast: httpx.Client) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    data = fast.post(
        "/v1/chat/completions", json={**body, "max_completion_tokens": 3, "max_tokens": 9}
    ).json()
    assert data["usage"]["completion_tokens"] == 3
    default = fast.post("/v1/chat/completions", json=body).json()
    # Without a size the answer is as long as a stream has chunks (5 on this server).
    assert default["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize("prefix", PREFIXES)
def test_embeddings_shape_dimensions_and_usage(fast: httpx.Client, prefix: str) -> None:
    inputs = ["first text", "second, longer text"]
    response = fast.post(
        f"{prefix}/embeddings", json={"model": "text-embedding-3-small", "input": inputs}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "list"
    assert [item["index"] for item in data["data"]] == [0, 1]
    assert all(item["object"] == "embedding" for item in data["data"])
    assert len(data["data"][0]["embedding"]) == 16
    tokens = sum(estimate_tokens(text) for text in inputs)
    assert data["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}

    sized = fast.post(f"{prefix}/embeddings", json={"model": "e", "input": "x", "dimensions": 5})
    assert len(sized.json()["data"][0]["embedding"]) == 5

    # LiteLLM forwards an explicit null encoding: the default (float) applies
    null = fast.post(
        f"{prefix}/embeddings", json={"model": "e", "input": "x", "encoding_format": None}
    )
    assert null.status_code == 200
    assert isinstance(null.json()["data"][0]["embedding"], list)


def test_embeddings_base64_and_token_arrays(fast: httpx.Client) -> None:
    body = {"model": "e", "input": [[1, 2, 3], [4]], "encoding_format": "base64", "dimensions": 4}
    data = fast.post("/v1/embeddings", json=body).json()
    assert len(data["data"]) == 2
    assert data["usage"]["prompt_tokens"] == 4
    vector = struct.unpack("<4f", base64.b64decode(data["data"][0]["embedding"]))
    assert sum(v * v for v in vector) == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_models_list(fast: httpx.Client, prefix: str) -> None:
    data = fast.get(f"{prefix}/models").json()
    assert data["object"] == "list"
    assert {m["object"] for m in data["data"]} == {"model"}
    assert "gpt-4o-mini" in [m["id"] for m in data["data"]]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_responses_shape_and_usage(fast: httpx.Client, prefix: str) -> None:
    body = {"model": "gpt-4o", "input": PROMPT, "instructions": "abcd", "max_output_tokens": 6}
    data = fast.post(f"{prefix}/responses", json=body).json()
    assert data["object"] == "response"
    assert data["status"] == "completed"
    message = data["output"][0]
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    text = message["content"][0]
    assert text["type"] == "output_text"
    assert estimate_tokens(text["text"]) == 6
    prompt = estimate_tokens(PROMPT + "abcd")
    assert data["usage"]["input_tokens"] == prompt
    assert data["usage"]["output_tokens"] == 6
    assert data["usage"]["total_tokens"] == prompt + 6


def test_responses_accepts_message_items(fast: httpx.Client) -> None:
    items = [{"role": "user", "content": [{"type": "input_text", "text": "abcdefgh"}]}]
    data = fast.post("/v1/responses", json={"model": "m", "input": items}).json()
    assert data["usage"]["input_tokens"] == 2


@pytest.mark.parametrize("prefix", PREFIXES)
def test_anthropic_messages_shape_and_usage(fast: httpx.Client, prefix: str) -> None:
    body = {
        "model": "claude-3-5-haiku",
        "max_tokens": 4,
        "system": "abcd",
        "messages": [{"role": "user", "content": PROMPT}],
    }
    data = fast.post(f"{prefix}/messages", json=body).json()
    assert data["type"] == "message"
    assert data["role"] == "assistant"
    assert data["id"].startswith("msg_")
    assert data["stop_reason"] == "end_turn"
    assert data["content"][0]["type"] == "text"
    assert estimate_tokens(data["content"][0]["text"]) == 4
    assert data["usage"] == {
        "input_tokens": estimate_tokens(PROMPT + "abcd"),
        "output_tokens": 4,
    }


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"model": "m"}, "messages"),
        ("/v1/chat/completions", {"messages": [{"content": "x"}]}, "model"),
        ("/v1/chat/completions", {"model": "m", "messages": [{}], "max_tokens": 0}, "max_tokens"),
        ("/v1/embeddings", {"model": "m", "input": 5}, "input"),
        ("/v1/embeddings", {"model": "m", "input": "x", "dimensions": 0}, "dimensions"),
        (
            "/v1/embeddings",
            {"model": "m", "input": "x", "encoding_format": "hex"},
            "encoding_format",
        ),
        ("/v1/responses", {"model": "m"}, "input"),
        ("/v1/messages", {"model": "m", "max_tokens": "many", "messages": [{}]}, "max_tokens"),
    ],
)
def test_bad_requests_name_the_field(
    fast: httpx.Client, path: str, body: dict[str, object], field: str
) -> None:
    response = fast.post(path, json=body)
    assert response.status_code == 400
    payload = response.json()
    message = payload["error"]["message"]
    assert message.startswith(f"{field}:")


def test_invalid_json_and_unknown_routes(fast: httpx.Client) -> None:
    bad = fast.post("/v1/chat/completions", content=b"{not json")
    assert bad.status_code == 400
    assert "invalid JSON" in bad.json()["error"]["message"]
    assert fast.post("/v1/chat/completions", json=[1, 2]).status_code == 400
    missing = fast.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert fast.get("/v1/chat/completions").status_code == 404
