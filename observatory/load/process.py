"""One load process of a run: what it records per request, and how it paces its users.

The per-process half of the plugin: the plugin calls ``on_request`` from Locust's request
event, ``pause`` from the users' wait time and ``report`` from report_to_master. Locust's
and geventhttpclient's exceptions are translated into failure categories here.
"""

from __future__ import annotations

import dataclasses
import os
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import gevent
from geventhttpclient.header import Headers
from geventhttpclient.response import HTTPParseError
from geventhttpclient.useragent import BadStatusCode
from geventhttpclient.useragent import ConnectionError as HttpClientConnectionError
from locust.env import Environment
from locust.exception import CatchResponseError

from observatory.domain import Series
from observatory.load.body import BodyCheck
from observatory.load.config import API_KEY_ENV, LoadConfig
from observatory.load.histogram import collect_cycles
from observatory.load.pacing import ArrivalSchedule
from observatory.load.recorder import Recorder
from observatory.load.redaction import redact
from observatory.load.saturation import CpuMeter
from observatory.load.sse import BadBodyError
from observatory.load.window import WindowGrid

if TYPE_CHECKING:
    from observatory.load.master import MasterState

INTENDED_KEY = "observatory_intended"
EXTRAS_KEY = "observatory_extras"
USAGE_KEY = "observatory_usage"  # token fields of a JSON body to check and read
CLIENT_STOP_KEY = "observatory_client_stop"  # the series of a request the client gave up
DROPPED_NAME = "*"  # dropped sends were never made, so they have no request name

LATENCY = Series.LATENCY.value
TTFT = Series.TTFT.value
INTER_CHUNK = Series.INTER_CHUNK.value
OVERHEAD = Series.OVERHEAD.value
OVERHEAD_HEADER = Series.OVERHEAD_HEADER.value
LATE = Series.LATE.value
DROPPED = Series.DROPPED.value
TOKENS = Series.TOKENS.value
ABANDONED = Series.ABANDONED.value
CANCELLED = Series.CANCELLED.value


@dataclass(slots=True)
class Extras:
    """What a helper measured beyond the end-to-end time (ms from its own send)."""

    ttft_ms: float | None = None
    gaps_ms: list[float] = field(default_factory=list)
    tokens: int | None = None
    upstream_ms: float | None = None
    overhead_header_ms: float | None = None


def classify(exception: BaseException, response: Any) -> str:
    """Failure category: http_<status>, timeout, connection, bad_body or other."""
    status = getattr(response, "status_code", 0) or 0
    if status >= 400 or (status and isinstance(exception, BadStatusCode)):
        return f"http_{status}"
    if isinstance(exception, BadBodyError | CatchResponseError | ValueError):
        return "bad_body"
    if isinstance(exception, TimeoutError | gevent.Timeout):
        return "timeout"
    if isinstance(exception, OSError | HttpClientConnectionError | HTTPParseError):
        return "connection"
    return "other"


def _describe(exception: BaseException, response: Any) -> str:
    text = f"{type(exception).__name__}: {exception}"
    status = getattr(response, "status_code", 0) or 0
    if status >= 400:
        try:
            body = response.text or ""
        except Exception:  # the body is a courtesy; a failure to decode it is not news
            body = ""
        text += f" | body: {body[:200]}"
    return text


def _header_ms(headers: Any, names: tuple[str, ...]) -> float | None:
    """The first of ``names`` (lower case) in ``headers``, as a float (None if absent/junk)."""
    raw_storage = type(headers) is Headers
    for name in names:
        if raw_storage:
            # geventhttpclient keeps (field, value) or a list of them under the lower-case
            # name; reading it directly costs a tenth of Headers.get, on every request.
            raw = dict.get(headers, name)
            value = None if raw is None else raw[1] if isinstance(raw, tuple) else raw[0][1]
        else:
            value = headers.get(name)
        if value is not None:
            try:
                return float(value)
            except ValueError:
                return None
    return None


class ProcessState:
    """One Locust process of a run: recording (workers/local) and the master's state."""

    def __init__(self, environment: Environment, config: LoadConfig) -> None:
        self.environment = environment
        self.config = config
        self.grid = WindowGrid(config.run_start, config.window_s, config.duration_s)
        self.recorder = Recorder(self.grid)
        self.meter = CpuMeter()
        profile = config.profile
        self.schedule = (
            ArrivalSchedule(str(profile.get("arrival", "poisson")), config.drop_after_s)
            if config.open_model
            else None
        )
        self.rng = random.Random()
        self.waiting = 0
        api_key = os.environ.get(API_KEY_ENV, "")
        self.api_key = api_key
        self.secrets = [api_key] if api_key else []
        self.master: MasterState | None = None
        self.bodies = BodyCheck(int(config.params.get("full_json_every", 16)))
        # LiteLLM passes provider headers on with an "llm_provider-" prefix.
        upstream = config.upstream_header
        self._upstream_names = (upstream.lower(), f"llm_provider-{upstream}".lower())
        own = config.overhead_header
        self._own_names = (own.lower(),) if own else ()
        self._wait = (float(profile.get("wait_min", 0.0)), float(profile.get("wait_max", 0.0)))

    def rebase(self, run_start: float) -> None:
        """Start the window grid at ``run_start`` (before any sample was recorded)."""
        self.config = dataclasses.replace(self.config, run_start=run_start)
        self.grid = WindowGrid(run_start, self.config.window_s, self.config.duration_s)
        self.recorder = Recorder(self.grid)
        if self.master is not None:
            self.master.rebase(self.config, self.grid)

    # the request path (workers and local runners)

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: BaseException | None = None,
        start_time: float | None = None,
        **_: Any,
    ) -> None:
        """Locust's request event: record one request (successes and failures)."""
        index = self.grid.index(time.time())
        record = self.recorder.record
        context = context or {}
        offset_ms = 0.0
        intended = context.get(INTENDED_KEY)
        if intended is not None and start_time is not None:
            late_ms = (start_time - intended) * 1000.0
            offset_ms = max(0.0, late_ms)
            if late_ms > self.config.late_after_ms:
                record(LATE, name, index, late_ms)
        stopped = context.get(CLIENT_STOP_KEY)
        if stopped is not None:  # the client's choice: counted, neither latency nor failure
            record(stopped, name, index, response_time + offset_ms)
            return
        fields = context.get(USAGE_KEY)
        tokens = None
        if fields is not None and exception is None:
            try:
                tokens = self.bodies.tokens(response.content or b"", fields)
            except BadBodyError as exc:
                exception = exc
        if exception is not None:
            message = redact(_describe(exception, response), self.secrets)
            self.recorder.fail(name, index, classify(exception, response), message)
            return
        record(LATENCY, name, index, response_time + offset_ms)
        extras = context.get(EXTRAS_KEY)
        if isinstance(extras, Extras):
            self._record_extras(name, index, response_time, offset_ms, extras)
            return
        if tokens is not None:
            record(TOKENS, name, index, float(tokens))
        upstream, own = self.header_timings(response)
        if upstream is not None:
            record(OVERHEAD, name, index, response_time - upstream)
        if own is not None:
            record(OVERHEAD_HEADER, name, index, own)

    def header_timings(self, response: Any) -> tuple[float | None, float | None]:
        """(upstream service time, the gateway's own overhead) in ms, from the headers."""
        headers = getattr(response, "headers", None)
        if headers is None:
            return None, None
        return _header_ms(headers, self._upstream_names), _header_ms(headers, self._own_names)

    def _record_extras(
        self, name: str, index: int, response_time: float, offset_ms: float, extras: Extras
    ) -> None:
        record = self.recorder.record
        if extras.ttft_ms is not None:
            record(TTFT, name, index, extras.ttft_ms + offset_ms)
        if extras.gaps_ms:
            self.recorder.record_many(INTER_CHUNK, name, index, extras.gaps_ms)
        if extras.tokens is not None:
            # Tokens are counts, stored in the same HDR scale: 1 token = 1 "ms".
            record(TOKENS, name, index, float(extras.tokens))
        if extras.upstream_ms is not None:
            record(OVERHEAD, name, index, response_time - extras.upstream_ms)
        if extras.overhead_header_ms is not None:
            record(OVERHEAD_HEADER, name, index, extras.overhead_header_ms)

    # pacing (called by ObservatoryUser.wait_time)

    def pause(self, user: Any) -> None:
        """Sleep until this user's next send (closed: think time; open: intended time)."""
        now = time.time()
        if now >= self.config.deadline:
            delay = 3600.0  # no new sends after the deadline; the drain stops the user
        elif self.schedule is None:
            low, high = self._wait
            delay = self.rng.uniform(low, high) if high > 0 else 0.0
        else:
            delay = self._next_send(user, now)
        if delay <= 0:
            return
        self.waiting += 1
        try:
            gevent.sleep(delay)
        finally:
            self.waiting -= 1

    def _next_send(self, user: Any, now: float) -> float:
        assert self.schedule is not None
        profile = self.config.profile
        runner = self.environment.runner
        users_here = max(1, runner.user_count if runner else 1)
        # This process's share of the rate is its share of the in-flight slots (users),
        # so local and remote workers split the rate however the master spread the users.
        rate = float(profile["rate"]) * users_here / int(profile["max_in_flight"])
        ticket = self.schedule.take(now, rate)
        for lateness in ticket.dropped_lateness_s:
            self.recorder.record(DROPPED, DROPPED_NAME, self.recorder.index(now), lateness * 1e3)
        user.observatory_intended = ticket.intended
        return ticket.intended - now

    # reporting

    def report(self) -> dict[str, Any]:
        """This process's delta for the master, with its CPU verdict and in-flight count."""
        payload = self.recorder.take()
        sample = self.meter.sample()
        reasons = sample.reasons(self.config.saturation_cpu)
        payload["saturation"] = [[sample.since, sample.until, r] for r in reasons]
        runner = self.environment.runner
        users = runner.user_count if runner else 0
        payload["in_flight"] = max(0, users - self.waiting)
        payload["pid"] = os.getpid()
        collect_cycles()
        return payload
