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

import importlib
import logging
import os
import time
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import WORKER_REPORT_INTERVAL, LocalRunner, MasterRunner, Runner, WorkerRunner

from observatory.errors import ObservatoryError
from observatory.load.config import CONFIG_ENV, CONFIG_OPTION, LoadConfig
from observatory.load.master import MasterState
from observatory.load.process import ProcessState

log = logging.getLogger("observatory.load")

REPORT_KEY = "observatory"
FINAL_MESSAGE = "observatory_final"
LOOP_INTERVAL_S = 1.0
FINAL_WAIT_S = 5.0


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
    request: Any = events.request  # Locust's EventHook is untyped
    if _STATE is not None:
        request.remove_listener(_STATE.on_request)
    config = _config(environment)
    _STATE = None if config is None else ProcessState(environment, config)
    if _STATE is not None:
        # The bound method itself listens: one Python call less on every request.
        request.add_listener(_STATE.on_request)
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
                master.trim_locust_history()
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
