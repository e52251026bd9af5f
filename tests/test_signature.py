"""Failure signatures: the same error with different ids, numbers and addresses is one."""

from __future__ import annotations

from observatory.signature import MAX_SIGNATURE_CHARS, signature


def test_variable_parts_collapse_and_words_stay() -> None:
    one = signature(
        "ConnectError: [Errno 111] Connection refused to 10.0.0.5:8080 for request "
        "req_8f3a9c22b1 id 123e4567-e89b-12d3-a456-426614174000 after 30.5 s"
    )
    other = signature(
        "ConnectError: [Errno 111] Connection refused to 10.0.0.9:9090 for request "
        "req_77ab01cd99 id 00000000-1111-2222-3333-444444444444 after 2 s"
    )
    assert one == other
    assert one == (
        "ConnectError: [Errno <n>] Connection refused to <addr> for request <id> id <uuid> "
        "after <n> s"
    )


def test_urls_hex_quoted_values_and_units() -> None:
    assert signature("model 'gpt-4o' not found at 0x7f3a2b1c") == "model '<q>' not found at <hex>"
    assert signature("GET http://127.0.0.1:4000/v1/models took 12ms") == "GET <url> took <n>"
    assert signature("model gpt-4o on localhost:4000") == "model gpt-4o on <addr>"


def test_json_keys_stay_and_the_message_inside_survives() -> None:
    body = (
        '{"error":{"message":"Cannot send a request, as the client has been closed.","code":"500"}}'
    )
    assert signature(f"HTTPError: 500 | body: {body}") == (
        'HTTPError: <n> | body: {"error":{"message":"Cannot send a request, as the client has '
        'been closed.","code":"<q>"}}'
    )


def test_whitespace_folds_and_long_messages_are_cut() -> None:
    assert signature("a \n  b\tc") == "a b c"
    long = signature("word " * 200)
    assert len(long) == MAX_SIGNATURE_CHARS
    assert long.endswith("...")
