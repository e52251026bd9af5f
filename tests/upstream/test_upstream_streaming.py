"""Streams: the configured number of content chunks, dialect event names, usage,
and chunks never earlier than the configured schedule (timing accuracy itself is
measured in benchmarks, never asserted here as an upper bound)."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from observatory.upstream.server import UpstreamServer
from observatory.upstream.tokens import estimate_tokens

StartUpstream = Callable[..., UpstreamServer]

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "abcdefgh"}]}


def sse_events(response: httpx.Response) -> Iterator[tuple[str | None, str, float]]:
    """(event name, data, arrival time) per server-sent event."""
    name: str | None = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            yield name, line[len("data: ") :], time.monotonic()
            name = None


def chat_stream(client: httpx.Client, body: dict[str, object]) -> list[str]:
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        return [data for _, data, _ in sse_events(r)]


def test_chat_stream_chunks_usage_and_done(fast: httpx.Client) -> None:
    datas = chat_stream(fast, {**CHAT, "stream_options": {"include_usage": True}})
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    content = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content) == 5
    assert content[0]["choices"][0]["delta"]["role"] == "assistant"
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finish] == ["stop"]
    usage = chunks[-1]
    assert usage["choices"] == []
    text = "".join(c["choices"][0]["delta"]["content"] for c in content)
    assert usage["usage"] == {
        "prompt_tokens": 2,
        "completion_tokens": estimate_tokens(text),
        "total_tokens": 2 + estimate_tokens(text),
    }


def test_chat_stream_without_include_usage_has_no_usage_chunk(fast: httpx.Client) -> None:
    datas = chat_stream(fast, {**CHAT, "max_tokens": 12})
    chunks = [json.loads(d) for d in datas[:-1]]
    assert all("usage" not in c for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert estimate_tokens(text) == 12


def test_short_answers_send_one_token_per_chunk(fast: httpx.Client) -> None:
    datas = chat_stream(fast, {**CHAT, "max_tokens": 2})
    content = [d for d in datas[:-1] if json.loads(d)["choices"][0]["delta"].get("content")]
    assert len(content) == 2


def test_responses_stream_events(fast: httpx.Client) -> None:
    body = {"model": "gpt-4o", "input": "abcdefgh", "stream": True, "max_output_tokens": 10}
    with fast.stream("POST", "/responses", json=body) as response:
        events = [(name, json.loads(data)) for name, data, _ in sse_events(response)]
    names = [name for name, _ in events]
    assert names[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert names[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert names.count("response.output_text.delta") == 5
    assert all(data["type"] == name for name, data in events)
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    deltas = "".join(d["delta"] for n, d in events if n == "response.output_text.delta")
    completed = events[-1][1]["response"]
    assert completed["output"][0]["content"][0]["text"] == deltas
    assert completed["usage"]["output_tokens"] == estimate_tokens(deltas) == 10
    assert completed["usage"]["input_tokens"] == 2


def test_anthropic_stream_events(fast: httpx.Client) -> None:
    body = {"model": "claude", "max_tokens": 7, "stream": True, "messages": CHAT["messages"]}
    with fast.stream("POST", "/v1/messages", json=body) as response:
        events = [(name, json.loads(data)) for name, data, _ in sse_events(response)]
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 5,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    assert events[0][1]["message"]["usage"]["input_tokens"] == 2
    text = "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta")
    assert estimate_tokens(text) == 7
    assert events[-2][1]["usage"]["output_tokens"] == 7
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"


TTFT, CHUNKS, GAP = 0.12, 6, 0.05


@pytest.mark.parametrize(
    ("path", "body", "content_event"),
    [
        ("/v1/chat/completions", {**CHAT, "stream": True}, None),
        (
            "/v1/responses",
            {"model": "m", "input": "x", "stream": True},
            "response.output_text.delta",
        ),
        ("/v1/messages", {**CHAT, "stream": True}, "content_block_delta"),
    ],
)
def test_chunks_never_come_earlier_than_configured(
    start_upstream: StartUpstream, path: str, body: dict[str, object], content_event: str | None
) -> None:
    server = start_upstream(
        latency={"distribution": "fixed", "mean": 0},
        stream={"ttft": TTFT, "chunks": CHUNKS, "chunk_delay": GAP},
    )
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.get("/v1/models")  # open the connection first, so sent marks the request
        sent = time.monotonic()
        with client.stream("POST", path, json=body) as response:
            headers = response.headers
            arrivals = [
                at
                for name, data, at in sse_events(response)
                if name == content_event and data != "[DONE]" and _is_content(data)
            ]
    assert len(arrivals) == CHUNKS
    # Causality makes this a strict bound: chunk k cannot leave before its deadline.
    for k, at in enumerate(arrivals):
        assert at - sent >= TTFT + k * GAP
    # Each gap as the client sees it: one can shrink by the client's own scheduling delay
    # in reading the chunk before it (this machine is shared), so the strict guarantee is
    # the schedule above and the gaps are checked through their median.
    gaps = sorted(b - a for a, b in itertools.pairwise(arrivals))
    assert gaps[len(gaps) // 2] >= GAP - 0.002
    assert float(headers["x-upstream-ttft-ms"]) == pytest.approx(TTFT * 1000)
    planned = (TTFT + (CHUNKS - 1) * GAP) * 1000
    assert float(headers["x-upstream-service-time-ms"]) == pytest.approx(planned)


def _is_content(data: str) -> bool:
    """True for a chat chunk with content, and for every event of the other dialects
    (those are already filtered by event name)."""
    event = json.loads(data)
    if event.get("object") != "chat.completion.chunk":
        return True
    return bool(event["choices"] and event["choices"][0]["delta"].get("content"))
