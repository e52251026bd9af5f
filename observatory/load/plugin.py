"""The observatory's Locust plugin: HDR windows per process, merged on the master, spooled.

Loaded by Locust next to the scenario file (``-f observatory/load/plugin.py,<scenario>``)
and imported by the scenario helpers, it wires one ProcessState into Locust's events:

- every process (worker, or a local runner) records each request into a Recorder: plain
  requests through Locust's ``request`` event, streaming timings through the extras the
  helpers attach to the event's context;
- workers ship their delta with each ``report_to_master`` (every few seconds) and a final
  one when their users have stopped; the master merges them (``worker_report`` and a custom
  message) in a Collector, the same path for ``--processes`` and for remote workers;
- the master appends completed windows to the spool, rewrites the live status, watches
  its own and the host's CPU, and at the run's deadline drains: stops the users (in-flight
  requests finish within the stop timeout), waits for every worker's final delta, writes
  everything left and quits. Locust's own ``-t`` and the runner's watchdog are the hard
  bounds behind it.

Locust's own statistics are left alone and never analysed: they round to 10 ms between
100 ms and 1 s and their history rows are cumulative.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib
import logging
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from geventhttpclient.response import HTTPParseError
from geventhttpclient.useragent import BadStatusCode
from geventhttpclient.useragent import ConnectionError as HttpClientConnectionError
from locust import events
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.runners import WORKER_REPORT_INTERVAL, LocalRunner, MasterRunner, Runner, WorkerRunner

from observatory.domain import Series
from observatory.errors import ObservatoryError
from observatory.load.body import json_object, usage_tokens
from observatory.load.collector import Collector
from observatory.load.config import API_KEY_ENV, CONFIG_ENV, CONFIG_OPTION, LoadConfig
from observatory.load.pacing import ArrivalSchedule
from observatory.load.recorder import Recorder
from observatory.load.redaction import redact
from observatory.load.saturation import CpuMeter
from observatory.load.spool import SPOOL_NAME, SpoolWriter
from observatory.load.sse import BadBodyError
from observatory.load.status import STATUS_NAME, write_status
from observatory.load.window import WindowGrid

log = logging.getLogger("observatory.load")

INTENDED_KEY = "observatory_intended"
EXTRAS_KEY = "observatory_extras"
USAGE_KEY = "observatory_usage"  # token fields of a JSON body to check and read
REPORT_KEY = "observatory"
FINAL_MESSAGE = "observatory_final"
DROPPED_NAME = "*"  # dropped sends were never made, so they have no request name
LOOP_INTERVAL_S = 1.0
STATUS_INTERVAL_S = 2.0
FINAL_WAIT_S = 5.0

LATENCY = Series.LATENCY.value
TTFT = Series.TTFT.value
INTER_CHUNK = Series.INTER_CHUNK.value
OVERHEAD = Series.OVERHEAD.value
OVERHEAD_HEADER = Series.OVERHEAD_HEADER.value
LATE = Series.LATE.value
DROPPED = Series.DROPPED.value
TOKENS = Series.TOKENS.value


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


def _collect_garbage() -> None:
    """Free the histograms just encoded or written, now rather than at some later GC.

    A library histogram holds a reference cycle (histogram <-> encoder) around ~190 KB
    of counters, so it is freed only by the cycle collector, which a process allocating
    few objects runs rarely: the generator's RSS would creep up by megabytes between
    collections. Locust froze its start-up objects (gc.freeze) before forking, so a full
    collection here walks only the run's own objects and takes well under a millisecond.
    """
    gc.collect()


def _header_ms(headers: Any, names: tuple[str, ...]) -> float | None:
    """The first of ``names`` present in ``headers``, as a float (None if absent or junk)."""
    for name in names:
        value = headers.get(name)
        if value is not None:
            try:
                return float(value)
            except ValueError:
                return None
    return None


class MasterState:
    """The master's half: merges deltas, writes spool and status, drains at the deadline."""

    def __init__(self, environment: Environment, config: LoadConfig, grid: WindowGrid) -> None:
        self.environment = environment
        self.config = config
        run_dir = Path(config.run_dir or ".")
        grace = max(config.window_s, 2 * WORKER_REPORT_INTERVAL + 1.0)
        self.collector = Collector(grid, grace_s=grace)
        self.spool = SpoolWriter(run_dir / SPOOL_NAME)
        self.status_path = run_dir / STATUS_NAME
        self.meter = CpuMeter(host=True)
        self.finals: set[str] = set()
        self.in_flight: dict[str, int] = {}
        self.state = "starting"
        self.drain_started = False
        self.drained = False
        self._last_status = 0.0

    def absorb(self, client_id: str, payload: dict[str, Any]) -> None:
        self.collector.merge(payload)
        for since, until, reason in payload.get("saturation", ()):
            self.collector.mark_saturated(float(since), float(until), str(reason))
        self.in_flight[client_id] = int(payload.get("in_flight", 0))

    def write_due(self, now: float) -> None:
        windows = self.collector.due(now)
        for window in windows:
            self.spool.append(window)
        if windows:
            _collect_garbage()

    def flush(self) -> None:
        for window in self.collector.flush_all():
            self.spool.append(window)

    def watch_cpu(self) -> None:
        sample = self.meter.sample()
        for reason in sample.reasons(self.config.saturation_cpu):
            self.collector.mark_saturated(sample.since, sample.until, reason)

    def write_status(self, now: float, *, force: bool = False) -> None:
        if not force and now - self._last_status < STATUS_INTERVAL_S:
            return
        self._last_status = now
        write_status(self.status_path, self.status(now))

    def status(self, now: float) -> dict[str, Any]:
        config, totals = self.config, self.collector.totals
        latest = self.collector.latest(now)
        runner = self.environment.runner
        elapsed = max(0.0, now - config.run_start) if config.run_start > 0 else 0.0
        rps = error_rate = p99 = 0.0
        if latest is not None and latest.requests:
            rps = latest.requests / latest.length_s if latest.length_s else 0.0
            error_rate = latest.failures / latest.requests
            p99 = latest.p99_ms
        return {
            "state": self.state,
            "pid": os.getpid(),
            "run_start": config.run_start,
            "duration_s": config.duration_s,
            "elapsed_s": round(elapsed, 3),
            "remaining_s": round(max(0.0, config.deadline - now), 3)
            if config.run_start > 0
            else config.duration_s,
            "requests": totals.requests,
            "failures": totals.failures,
            "rps": round(rps, 3),
            "p99_ms": p99,
            "error_rate": round(error_rate, 6),
            "in_flight": sum(self.in_flight.values()),
            "users": runner.user_count if runner else 0,
            "workers": runner.worker_count if isinstance(runner, MasterRunner) else 1,
            "saturated": bool(latest and latest.saturated),
            "windows_written": totals.windows_written,
            "late_samples": totals.late_samples,
            "lost_samples": totals.lost_samples,
            "updated_at": now,
        }


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
        # LiteLLM passes provider headers on with an "llm_provider-" prefix.
        upstream = config.upstream_header
        self._upstream_names = (upstream, f"llm_provider-{upstream}")
        self._own_names = (config.overhead_header,) if config.overhead_header else ()
        self._wait = (float(profile.get("wait_min", 0.0)), float(profile.get("wait_max", 0.0)))

    def rebase(self, run_start: float) -> None:
        """Start the window grid at ``run_start`` (before any sample was recorded)."""
        self.config = dataclasses.replace(self.config, run_start=run_start)
        self.grid = WindowGrid(run_start, self.config.window_s, self.config.duration_s)
        self.recorder = Recorder(self.grid)
        if self.master is not None:
            self.master.config = self.config
            self.master.collector = Collector(self.grid, self.master.collector.grace_s)

    # the request path (workers and local runners)

    def on_request(
        self,
        name: str,
        response_time: float,
        response: Any,
        context: dict[str, Any] | None,
        exception: BaseException | None,
        start_time: float | None,
    ) -> None:
        index = self.recorder.index(time.time())
        record = self.recorder.record
        context = context or {}
        offset_ms = 0.0
        intended = context.get(INTENDED_KEY)
        if intended is not None and start_time is not None:
            late_ms = (start_time - intended) * 1000.0
            offset_ms = max(0.0, late_ms)
            if late_ms > self.config.late_after_ms:
                record(LATE, name, index, late_ms)
        fields = context.get(USAGE_KEY)
        tokens = None
        if fields is not None and exception is None:
            try:
                tokens = usage_tokens(json_object(response.content or b""), fields)
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
        self.waiting += 1
        try:
            if delay > 0:
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
        _collect_garbage()
        return payload


_STATE: ProcessState | None = None


def state() -> ProcessState | None:
    """The plugin state of this Locust process (None before the run's config is known)."""
    return _STATE


def _config(environment: Environment) -> LoadConfig | None:
    options = environment.parsed_options
    text = getattr(options, "observatory_config", "") if options is not None else ""
    text = text or os.environ.get(CONFIG_ENV, "")
    if not text:
        return None
    try:
        return LoadConfig.from_json(text)
    except ObservatoryError as exc:
        log.error("observatory plugin disabled: %s", exc)
        return None


def _new_state(environment: Environment) -> ProcessState | None:
    global _STATE
    config = _config(environment)
    _STATE = None if config is None else ProcessState(environment, config)
    return _STATE


# Locust event listeners


def _add_options(parser: Any, **_: Any) -> None:
    parser.add_argument(
        CONFIG_OPTION,
        type=str,
        default="",
        env_var=CONFIG_ENV,
        include_in_web_ui=False,
        help="Observatory run parameters as JSON (set by the observatory runner).",
    )


def _on_init(environment: Environment, runner: Runner | None = None, **_: Any) -> None:
    if runner is None or isinstance(runner, WorkerRunner):
        return  # workers set up at test start, with the config the master sends them
    st = _new_state(environment)
    if st is None:
        log.warning("observatory plugin: no %s; nothing will be recorded", CONFIG_ENV)
        return
    st.master = MasterState(environment, st.config, st.grid)
    st.master.write_status(time.time(), force=True)
    runner.register_message(FINAL_MESSAGE, _on_final)
    gevent.spawn(_master_loop, st)
    if isinstance(runner, LocalRunner):
        gevent.spawn(_local_reporter, st)


def _on_test_start(environment: Environment, **_: Any) -> None:
    # A worker can get its first spawn message while its runner is still being built
    # (environment.runner is None then), so the role comes from the options.
    if getattr(environment.parsed_options, "worker", False):
        # The spawn message has just updated the options with the master's: remote
        # workers learn the run here, and forked ones the run's actual start time.
        if _new_state(environment) is None:
            log.error("observatory plugin: the master sent no run config; not recording")
        return
    st = _STATE
    if st is None or st.master is None:
        return
    if st.config.run_start <= 0:
        # The windows start when the users do, so start-up never eats into the duration;
        # the spawn messages that follow carry the start time to every worker.
        st.rebase(time.time())
        if environment.parsed_options is not None:
            environment.parsed_options.observatory_config = st.config.to_json()
    st.master.meter.sample()  # start-up CPU is not the run's
    st.master.state = "running"
    st.master.write_status(time.time(), force=True)


def _on_request(
    name: str,
    response_time: float,
    response: Any = None,
    context: dict[str, Any] | None = None,
    exception: BaseException | None = None,
    start_time: float | None = None,
    **_: Any,
) -> None:
    st = _STATE
    if st is not None:
        st.on_request(name, response_time, response, context, exception, start_time)


def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if _STATE is not None:
        data[REPORT_KEY] = _STATE.report()


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    st = _STATE
    payload = data.get(REPORT_KEY)
    if st is not None and st.master is not None and payload:
        st.master.absorb(client_id, payload)


def _on_final(environment: Environment, msg: Any, **_: Any) -> None:
    st = _STATE
    if st is not None and st.master is not None:
        if msg.data:
            st.master.absorb(msg.node_id, msg.data)
        st.master.finals.add(msg.node_id)


def _on_test_stop(environment: Environment, **_: Any) -> None:
    """Users have stopped: hand the master everything recorded so far, at once."""
    st = _STATE
    runner = environment.runner
    if st is None:
        return
    if isinstance(runner, WorkerRunner):
        runner.send_message(FINAL_MESSAGE, st.report())
    elif isinstance(runner, LocalRunner) and st.master is not None:
        st.master.absorb("local", st.report())
        st.master.finals.add("local")


def _on_quitting(environment: Environment, **_: Any) -> None:
    st = _STATE
    if st is None or st.master is None:
        return
    master = st.master
    if not master.drain_started:
        _drain(st, quit_after=False)
    deadline = time.time() + st.config.stop_timeout_s + FINAL_WAIT_S
    while not master.drained and time.time() < deadline:
        gevent.sleep(0.1)
    master.flush()
    master.state = "stopped"
    master.write_status(time.time(), force=True)
    master.spool.close()


# master greenlets


def _master_loop(st: ProcessState) -> None:
    master = st.master
    assert master is not None
    while not master.drained:
        now = time.time()
        # Before the users start there are no windows; should the workers never connect,
        # Locust's --expect-workers-max-wait and the runner's watchdog end the process.
        started = master.state != "starting"
        try:
            if started:
                master.write_due(now)
                master.watch_cpu()
            master.write_status(now)
        except ObservatoryError as exc:
            log.error("observatory plugin: %s; stopping the run", exc)
            st.environment.process_exit_code = 4
            _drain(st, quit_after=True)
            return
        if started and now >= st.config.deadline and not master.drain_started:
            gevent.spawn(_drain, st, quit_after=True)
        gevent.sleep(LOOP_INTERVAL_S)


def _local_reporter(st: ProcessState) -> None:
    while st.master is not None and not st.master.drained:
        gevent.sleep(WORKER_REPORT_INTERVAL)
        st.master.absorb("local", st.report())


def _drain(st: ProcessState, *, quit_after: bool) -> None:
    """Stop the users, wait for every worker's final delta, write everything, quit."""
    master = st.master
    runner = st.environment.runner
    if master is None or runner is None or master.drain_started:
        return
    master.drain_started = True
    master.state = "draining"
    master.write_status(time.time(), force=True)
    expected = {c.id for c in runner.clients.all} if isinstance(runner, MasterRunner) else set()
    if isinstance(runner, LocalRunner):
        expected = {"local"}
    runner.stop()
    deadline = time.time() + FINAL_WAIT_S
    while not expected <= master.finals and time.time() < deadline:
        gevent.sleep(0.05)
    missing = expected - master.finals
    if missing:
        log.warning("no final report from %d worker(s): %s", len(missing), sorted(missing))
    master.flush()
    master.state = "stopped"
    master.write_status(time.time(), force=True)
    master.drained = True
    if quit_after:
        runner.quit()


def _register() -> None:
    hooks: list[tuple[Any, Any]] = [
        (events.init_command_line_parser, _add_options),
        (events.init, _on_init),
        (events.test_start, _on_test_start),
        (events.request, _on_request),
        (events.report_to_master, _on_report_to_master),
        (events.worker_report, _on_worker_report),
        (events.test_stop, _on_test_stop),
        (events.quitting, _on_quitting),
    ]
    for hook, listener in hooks:
        hook.add_listener(listener)


if __name__ == "observatory.load.plugin":
    _register()
else:  # loaded by path (locust -f .../plugin.py): register once, through the package module
    importlib.import_module("observatory.load.plugin")
