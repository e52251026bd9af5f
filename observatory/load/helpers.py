"""The public helpers scenarios use: a base user and one call per API.

A scenario subclasses ``ObservatoryUser`` (a FastHttpUser whose pacing follows the run's
profile) and calls ``chat``, ``embeddings``, ``responses`` or ``anthropic_messages`` from
its tasks; ``params(user)`` gives the scenario parameters from the configuration, and
``prompt``/``pick`` build production-like requests. Each helper sends with the user's
client, parses the JSON or SSE body, measures TTFT, every inter-chunk gap, the end-to-end
time and the tokens, reads the gateway and upstream timing headers, and fires Locust's
request event once with those extras; the plugin records them.

Open model: make one request per task. The request takes the intended send time the
pacing assigned, and its latency counts from it.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import gevent
from geventhttpclient.response import HTTPParseError
from locust import FastHttpUser

from observatory.errors import InputError
from observatory.load import plugin
from observatory.load.config import CONFIG_ENV, LoadConfig
from observatory.load.process import (
    ABANDONED,
    CANCELLED,
    CLIENT_STOP_KEY,
    EXTRAS_KEY,
    INTENDED_KEY,
    USAGE_KEY,
    Extras,
)
from observatory.load.sse import BadBodyError, SseParser

__all__ = [
    "ObservatoryUser",
    "Weighted",
    "anthropic_messages",
    "chat",
    "elapsed",
    "embeddings",
    "param",
    "params",
    "pick",
    "prompt",
    "responses",
]

ANTHROPIC_VERSION: Final = "2023-06-01"
_WORDS: Final = (
    *("latency", "gateway", "token", "stream", "window", "budget", "release", "upstream"),
    *("request", "model", "cache", "routing", "retry", "quota", "tenant", "region"),
    *("shard", "replica", "signal", "metric", "trace", "span", "buffer", "socket"),
    *("thread", "worker", "queue", "batch", "prompt", "answer", "vector", "embed"),
)
_PROMPT_VARIANTS: Final = 16
_T = TypeVar("_T")


class ObservatoryUser(FastHttpUser):
    """Base user of every scenario: paced by the run's profile, authenticated."""

    abstract = True
    network_timeout = 60.0
    connection_timeout = 10.0

    def __init__(self, environment: Any) -> None:
        timeout = params(None).get("timeout")
        if timeout is not None:
            self.network_timeout = float(timeout)
        super().__init__(environment)
        self.observatory_intended: float | None = None

    @property
    def params(self) -> dict[str, Any]:
        return params(self)

    def on_start(self) -> None:
        st = plugin.state()
        if st is not None and st.schedule is not None:
            self.wait()  # type: ignore[no-untyped-call]  # paces the first send too

    def wait_time(self) -> float:
        # Sleeping here rather than returning a delay lets the plugin count users that
        # are waiting (the rest are in flight); Locust still sees a waiting user, so a
        # graceful stop interrupts the sleep.
        st = plugin.state()
        if st is not None:
            st.pause(self)
        return 0.0

    def context(self) -> dict[str, Any]:
        """Locust merges this into each plain request's context: the intended send time."""
        intended = self.take_intended()
        return {} if intended is None else {INTENDED_KEY: intended}

    def take_intended(self) -> float | None:
        intended, self.observatory_intended = self.observatory_intended, None
        return intended


def elapsed() -> float:
    """Seconds since the run's load started (0 before it has, or outside a run)."""
    st = plugin.state()
    start = st.config.run_start if st is not None else 0.0
    return max(0.0, time.time() - start) if start > 0 else 0.0


def params(user: Any = None) -> dict[str, Any]:
    """The scenario parameters of this run ({} outside an observatory run).

    Also usable at import time (before Locust has parsed its options), so a scenario can
    check its parameters at once and fail the run's start-up with a clear message.
    """
    st = plugin.state()
    if st is not None:
        return dict(st.config.params)
    text = os.environ.get(CONFIG_ENV, "")
    return dict(LoadConfig.from_json(text).params) if text else {}


def param(values: Mapping[str, Any], name: str, default: _T) -> _T:
    """``values[name]`` checked against the type of ``default`` (the default if absent)."""
    value = values.get(name, default)
    kind = type(default)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InputError(
            f"scenario param {name!r}: expected {kind.__name__} (like {default!r}), got {value!r}"
        )
    return value


def _auth_headers(anthropic: bool = False) -> dict[str, str]:
    """The request headers of this process's run (built once; Locust copies them)."""
    st = plugin.state()
    key = (id(st), anthropic)
    headers = _HEADERS.get(key)
    if headers is None:
        headers = {"Content-Type": "application/json"}
        if st is not None and st.api_key:
            headers["Authorization"] = f"Bearer {st.api_key}"
        if anthropic:
            headers["anthropic-version"] = ANTHROPIC_VERSION
        if len(_HEADERS) > 8:  # one run per process in practice; stay bounded anyway
            _HEADERS.clear()
        _HEADERS[key] = headers
    return headers


_HEADERS: dict[tuple[int, bool], dict[str, str]] = {}


def prompt(tokens: int, rng: random.Random | None = None) -> str:
    """A prompt of about ``tokens`` words, one of a few cached variants per size."""
    variants = _PROMPTS.get(tokens)
    if variants is None:
        seeded = random.Random(tokens)
        variants = _PROMPTS[tokens] = [
            f"[{i}] " + " ".join(seeded.choices(_WORDS, k=max(1, tokens)))
            for i in range(_PROMPT_VARIANTS)
        ]
    return (rng or random).choice(variants)


_PROMPTS: dict[int, list[str]] = {}


class Weighted:
    """Draws keys with probability proportional to their weights (built once per user)."""

    def __init__(self, weights: Mapping[str, float]) -> None:
        self.keys: Sequence[str] = list(weights)
        self._cumulative = list(itertools.accumulate(float(weights[k]) for k in self.keys))
        if not self.keys or self._cumulative[-1] <= 0:
            raise InputError(f"weights need a positive total, got {dict(weights)!r}")

    def draw(self, rng: random.Random | None = None) -> str:
        if len(self.keys) == 1:
            return self.keys[0]
        point = (rng or random).random() * self._cumulative[-1]
        return self.keys[bisect.bisect_right(self._cumulative, point)]


def pick(weights: Mapping[str, float], rng: random.Random | None = None) -> str:
    """One key of ``weights``, drawn with probability proportional to its weight."""
    return Weighted(weights).draw(rng)


# the API calls


def chat(
    user: ObservatoryUser,
    *,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int | None = None,
    stream: bool = False,
    name: str | None = None,
    abandon_after: int | None = None,
    cancel_after: float | None = None,
    **extra: Any,
) -> bool:
    """POST /v1/chat/completions (SSE with usage when ``stream``); True on a 2xx/3xx.

    The request name is ``chat:<model>`` (``chat_stream:<model>``) unless ``name`` is
    given. ``abandon_after``: close the connection after that many streamed content
    chunks; ``cancel_after``: give up after that many seconds. Either is the client's
    choice, recorded as its own count (``abandoned``, ``cancelled``), not as a failure.
    """
    body: dict[str, Any] = {"model": model, "messages": messages, **extra}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    path = "/v1/chat/completions"
    stop = (
        _GO_ON
        if abandon_after is None and cancel_after is None
        else _Stop(abandon_after, cancel_after)
    )
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return _post_stream(user, path, body, name or f"chat_stream:{model}", "chat", stop=stop)
    name = name or f"chat:{model}"
    return _post_json(user, path, body, name, ("completion_tokens",), stop=stop)


def embeddings(
    user: ObservatoryUser,
    *,
    model: str,
    input: str | list[str],
    encoding_format: str = "float",
    name: str | None = None,
) -> bool:
    """POST /v1/embeddings; True on a 2xx/3xx (a bad body is still recorded as a failure).

    ``encoding_format`` is sent explicitly, as the OpenAI SDKs do: some gateways forward
    an absent one as ``null``, which strict providers refuse.
    """
    body = {"model": model, "input": input, "encoding_format": encoding_format}
    return _post_json(user, "/v1/embeddings", body, name or f"embeddings:{model}", ())


def responses(
    user: ObservatoryUser,
    *,
    model: str,
    input: str | list[dict[str, Any]],
    max_output_tokens: int | None = None,
    stream: bool = False,
    name: str | None = None,
) -> bool:
    """POST /v1/responses (the Responses API); True on a 2xx/3xx."""
    body: dict[str, Any] = {"model": model, "input": input}
    if max_output_tokens is not None:
        body["max_output_tokens"] = max_output_tokens
    if stream:
        body["stream"] = True
        name = name or f"responses_stream:{model}"
        return _post_stream(user, "/v1/responses", body, name, "responses")
    name = name or f"responses:{model}"
    return _post_json(user, "/v1/responses", body, name, ("output_tokens",))


def anthropic_messages(
    user: ObservatoryUser,
    *,
    model: str,
    messages: list[dict[str, Any]],
    max_tokens: int,
    stream: bool = False,
    name: str | None = None,
) -> bool:
    """POST /v1/messages (Anthropic Messages, Bearer auth); True on a 2xx/3xx."""
    body: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    path = "/v1/messages"
    if stream:
        body["stream"] = True
        return _post_stream(user, path, body, name or f"messages_stream:{model}", "anthropic")
    name = name or f"messages:{model}"
    return _post_json(user, path, body, name, ("output_tokens",), anthropic=True)


# sending and measuring


@dataclass(frozen=True, slots=True)
class _Stop:
    """When the client walks away: after N streamed chunks, or after S seconds."""

    abandon_after: int | None = None
    cancel_after: float | None = None


_GO_ON = _Stop()


class _HungUpError(Exception):
    """The client closed a stream after the chunks it wanted (not a gateway failure)."""


class _ClientTimeout(BaseException):  # not an error: the client's choice
    """The client's own deadline. A BaseException that is not a gevent.Timeout: the HTTP
    client retries (and Locust records) a timeout as a failure, but lets this through."""


def _post_json(
    user: ObservatoryUser,
    path: str,
    body: dict[str, Any],
    name: str,
    token_fields: tuple[str, ...],
    anthropic: bool = False,
    stop: _Stop = _GO_ON,
) -> bool:
    if stop.cancel_after is not None:
        send = functools.partial(_post_json, user, path, body, name, token_fields, anthropic)
        return _cancellable(user, name, stop.cancel_after, send)
    # A plain Locust request: Locust times it and fires the request event, and the plugin
    # checks the JSON body and reads its usage there (USAGE_KEY), on the one request path.
    response = user.client.request(
        "POST",
        path,
        json=body,
        headers=_auth_headers(anthropic),
        name=name,
        context={USAGE_KEY: token_fields},
    )
    return bool(response.ok)


def _cancellable(
    user: ObservatoryUser, name: str, seconds: float, send: Callable[[], bool]
) -> bool:
    """``send()``, given up after ``seconds``: then recorded as cancelled, not failed."""
    intended = user.observatory_intended
    wall, started = time.time(), time.perf_counter()
    timer = gevent.Timeout(seconds, _ClientTimeout)
    timer.start()
    try:
        return send()
    except _ClientTimeout:
        # An unfinished response is released (its connection closed) when it is dropped.
        elapsed_ms = (time.perf_counter() - started) * 1000.0
        if intended is not None:
            elapsed_ms += max(0.0, wall - intended) * 1000.0
        user.observatory_intended = None
        _client_stop(user, name, CANCELLED, elapsed_ms, wall)
        return False
    finally:
        timer.close()


def _client_stop(user: ObservatoryUser, name: str, series: str, ms: float, wall: float) -> None:
    user.environment.events.request.fire(
        request_type="POST",
        name=name,
        response_time=ms,
        response_length=0,
        response=None,
        context={CLIENT_STOP_KEY: series},
        exception=None,
        start_time=wall,
        url=None,
    )


def _post_stream(
    user: ObservatoryUser,
    path: str,
    body: dict[str, Any],
    name: str,
    dialect: str,
    stop: _Stop = _GO_ON,
) -> bool:
    if stop.cancel_after is not None:
        send = functools.partial(
            _post_stream, user, path, body, name, dialect, _Stop(stop.abandon_after)
        )
        return _cancellable(user, name, stop.cancel_after, send)
    intended = user.take_intended()
    headers = _auth_headers(dialect == "anthropic")
    response = user.client.request(
        "POST", path, json=body, headers=headers, name=name, stream=True, catch_response=True
    )
    at_headers = time.perf_counter()
    meta = response.request_meta
    # Locust timed the headers from its own send; anchor our clock on the same origin.
    sent = at_headers - meta["response_time"] / 1000.0
    exception = meta.get("exception") or getattr(response, "error", None)
    extras = _header_extras(response)
    length = 0
    if exception is None:
        try:
            exception, length = _read_stream(response, dialect, sent, extras, stop.abandon_after)
        except _ClientTimeout:
            _hang_up(response._response)
            raise
    meta["response_time"] = (time.perf_counter() - sent) * 1000.0
    return _fire(user, meta, response, length, intended, extras, exception)


def _read_stream(
    response: Any, dialect: str, sent: float, extras: Extras, abandon_after: int | None = None
) -> tuple[BaseException | None, int]:
    """Read the SSE body line by line, timing content chunks; (failure or None, bytes)."""
    # FastResponse.iter_content blocks until a whole chunk_size is buffered, which would
    # smear TTFT and gaps; the underlying geventhttpclient response's readline returns
    # as soon as one line has arrived.
    raw = response._response
    parser = SseParser(dialect)
    clock = time.perf_counter
    last: float | None = None
    length = 0
    done = False
    chunks = 0
    try:
        while line := raw.readline(b"\n"):
            length += len(line)
            event = parser.feed(line)
            if event is None:
                continue
            if event.content:
                now = clock()
                if last is None:
                    extras.ttft_ms = (now - sent) * 1000.0
                else:
                    extras.gaps_ms.append((now - last) * 1000.0)
                last = now
                chunks += 1
                if chunks == abandon_after:
                    _hang_up(raw)
                    return _HungUpError(), length
            if event.tokens is not None:
                extras.tokens = event.tokens
            done = done or event.done
        tail = parser.finish()
        done = done or bool(tail and tail.done)
        if not done:
            raise BadBodyError(
                f"{dialect} stream ended without its terminator after {chunks} chunks"
            )
    except BadBodyError as exc:
        _discard(raw)
        return exc, length
    except (OSError, HTTPParseError) as exc:
        return exc, length
    if extras.tokens is None:
        extras.tokens = chunks
    return None, length


def _hang_up(raw: Any) -> None:
    """Close the connection mid-response, as a client that walks away does."""
    sock, pool = getattr(raw, "_sock", None), getattr(raw, "_pool", None)
    raw._sock = None
    raw._pool = None
    if sock is None:
        return
    if pool is not None:
        pool.release_socket(sock)  # closes it and frees the pool's slot
    else:
        sock.close()


def _discard(raw: Any) -> None:
    """Read the rest of a body we gave up parsing, so the connection stays usable."""
    try:
        while raw.readline(b"\n"):
            pass
    except (OSError, HTTPParseError):
        pass


def _header_extras(response: Any) -> Extras:
    st = plugin.state()
    if st is None:
        return Extras()
    upstream, own = st.header_timings(response)
    return Extras(upstream_ms=upstream, overhead_header_ms=own)


def _fire(
    user: ObservatoryUser,
    meta: dict[str, Any],
    response: Any,
    length: int,
    intended: float | None,
    extras: Extras,
    exception: BaseException | None,
) -> bool:
    context = dict(meta.get("context") or {})
    context[EXTRAS_KEY] = extras
    if isinstance(exception, _HungUpError):
        context[CLIENT_STOP_KEY] = ABANDONED
        exception = None
    if intended is not None:
        context[INTENDED_KEY] = intended
    user.environment.events.request.fire(
        request_type=meta["request_type"],
        name=meta["name"],
        response_time=meta["response_time"],
        response_length=length,
        response=response,
        context=context,
        exception=exception,
        start_time=meta["start_time"],
        url=meta.get("url"),
    )
    return exception is None
