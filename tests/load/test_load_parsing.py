"""SSE dialects, redaction of failure messages, open-model arrival schedules."""

from __future__ import annotations

import itertools
import random

import pytest

from observatory.load.body import BodyCheck
from observatory.load.pacing import ArrivalSchedule
from observatory.load.redaction import redact
from observatory.load.sse import BadBodyError, SseParser


def _events(dialect: str, body: bytes) -> list:  # type: ignore[type-arg]
    parser = SseParser(dialect)
    out = [e for line in body.splitlines(keepends=True) if (e := parser.feed(line))]
    if tail := parser.finish():
        out.append(tail)
    return out


def test_chat_stream_content_usage_and_done() -> None:
    body = (
        b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
        b": keep-alive\n\n"
        b'data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n'
        b'data: {"choices":[{"delta":{"content":"lo"}}]}\n\n'
        b'data: {"choices":[],"usage":{"completion_tokens":2}}\n\n'
        b"data: [DONE]\n\n"
    )
    events = _events("chat", body)
    assert [e.content for e in events] == [False, True, True, False, False]
    assert events[3].tokens == 2
    assert events[-1].done


def test_responses_and_anthropic_dialects() -> None:
    responses = (
        b'event: response.created\ndata: {"type":"response.created"}\n\n'
        b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
        b'"delta":"Hi"}\n\n'
        b'event: response.completed\ndata: {"type":"response.completed",'
        b'"response":{"usage":{"output_tokens":1}}}\n\n'
    )
    events = _events("responses", responses)
    assert [(e.content, e.done, e.tokens) for e in events] == [
        (False, False, None),
        (True, False, None),
        (False, True, 1),
    ]
    anthropic = (
        b'event: content_block_delta\ndata: {"type":"content_block_delta",'
        b'"delta":{"type":"text_delta","text":"Hi"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":3}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    events = _events("anthropic", anthropic)
    assert [(e.content, e.done, e.tokens) for e in events] == [
        (True, False, None),
        (False, False, 3),
        (False, True, None),
    ]


@pytest.mark.parametrize(
    ("dialect", "body", "match"),
    [
        ("chat", b"data: {not json\n\n", "not JSON"),
        ("chat", b"data: [1, 2]\n\n", "not a JSON object"),
        ("chat", b"garbage line\n", "not an SSE line"),
        ("chat", b'data: {"error":{"message":"overloaded"}}\n\n', "error event"),
        ("anthropic", b'data: {"type":"error","error":{"type":"overloaded"}}\n\n', "error"),
    ],
)
def test_bad_bodies_raise(dialect: str, body: bytes, match: str) -> None:
    with pytest.raises(BadBodyError, match=match):
        _events(dialect, body)


def test_unknown_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="accepted: chat, responses, anthropic"):
        SseParser("grpc")


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ("401 Authorization: Bearer sk-live-abcdef123456 rejected", "sk-live-abcdef123456"),
        ('{"error": "bad key", "api_key": "hunter2hunter2"}', "hunter2hunter2"),
        ("GET http://admin:s3cretpw@10.0.0.5/v1/models failed", "s3cretpw"),
        ("upstream said: invalid x-api-key=ak_999888777", "ak_999888777"),
        ("token mykey-0001 expired", "mykey-0001"),
    ],
)
def test_redact_removes_secrets(message: str, secret: str) -> None:
    cleaned = redact(message, secrets=["mykey-0001"])
    assert secret not in cleaned
    assert "<redacted>" in cleaned


def test_redact_keeps_ordinary_messages_and_bounds_length() -> None:
    assert redact("HTTP 503: upstream unavailable") == "HTTP 503: upstream unavailable"
    assert len(redact("x" * 5000)) == 300


def test_constant_arrivals_are_evenly_spaced() -> None:
    schedule = ArrivalSchedule("constant", drop_after_s=10.0, rng=random.Random(1))
    times = [schedule.take(100.0, rate=50.0).intended for _ in range(101)]
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {0.02}
    assert 100.0 <= times[0] < 100.02  # a random phase within the first gap


def test_poisson_arrivals_have_the_requested_mean_rate() -> None:
    schedule = ArrivalSchedule("poisson", drop_after_s=1e9, rng=random.Random(2))
    times = [schedule.take(0.0, rate=200.0).intended for _ in range(20_001)]
    assert (times[-1] - times[0]) == pytest.approx(100.0, rel=0.03)


def test_intended_times_older_than_drop_after_are_dropped_and_counted() -> None:
    schedule = ArrivalSchedule("constant", drop_after_s=1.0, rng=random.Random(3))
    first = schedule.take(0.0, rate=10.0)
    assert first.dropped == 0
    # every slot was busy for 5 s: about 40 sends are more than 1 s late by now
    ticket = schedule.take(5.0, rate=10.0)
    assert 38 <= ticket.dropped <= 41
    assert all(late > 1.0 for late in ticket.dropped_lateness_s)
    assert 4.0 - 0.1 <= ticket.intended <= 4.0 + 0.1  # the oldest one still worth sending


def test_bad_arrival_and_rate_are_refused() -> None:
    with pytest.raises(ValueError, match="accepted: constant, poisson"):
        ArrivalSchedule("burst", 1.0)
    with pytest.raises(ValueError, match="rate must be positive"):
        ArrivalSchedule("constant", 1.0).take(0.0, rate=0.0)


def test_body_check_reads_usage_and_refuses_non_objects() -> None:
    check = BodyCheck(full_every=1000)
    body = b'{"id":"x","choices":[],"usage":{"prompt_tokens":5,"completion_tokens": 32}}'
    assert check.tokens(body, ("completion_tokens",)) == 32
    assert check.tokens(b' {"usage":{"output_tokens":7}}\n', ("output_tokens",)) == 7
    assert check.tokens(b'{"data":[]}', ("completion_tokens",)) is None
    for bad in (b"", b"<html>proxy error</html>", b'{"usage":{"completion_tokens":3'):
        with pytest.raises(BadBodyError, match="not a JSON object"):
            check.tokens(bad, ("completion_tokens",))


def test_body_check_parses_every_nth_body_in_full() -> None:
    check = BodyCheck(full_every=2)
    malformed = b'{"usage": {"completion_tokens": 3}, oops}'
    assert check.tokens(malformed, ("completion_tokens",)) == 3  # shape only
    with pytest.raises(BadBodyError, match="not JSON"):
        check.tokens(malformed, ("completion_tokens",))  # the second is parsed in full
