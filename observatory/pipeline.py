"""The run pipeline: one function executes a run end to end.

    provision (mock upstream + gateway) -> sample -> load -> store (as it goes)
      -> analyse -> report -> alert (outbox, same transaction as the verdict) -> tear down

`observatory run` and the service's worker both call ``execute_run``. Our own failures end
the run with status ``error`` (never the candidate's fault); a gateway crash or a sustained
catastrophic error rate ends it early with a verdict.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from observatory.builds.provision import RunningGateway, start_gateway
from observatory.builds.sampler import ResourceSampler
from observatory.conclude import conclude_run
from observatory.domain import ResourceSample, RunStatus
from observatory.environment import host_facts
from observatory.errors import ObservatoryError, StoreError
from observatory.faults.redis_gateway import with_redis
from observatory.faults.redis_server import run_redis
from observatory.ingest import SpoolIngest
from observatory.load.runner import LoadProcess, start_load
from observatory.markers import marking
from observatory.neighbours import NeighbourProbe
from observatory.phases import PhaseDriver, default_factory
from observatory.settings import Settings, UpstreamSettings
from observatory.store import queue
from observatory.store import runs as store_runs
from observatory.store.db import transaction
from observatory.store.queue import LostRunError
from observatory.store.tables import Build, Run, utcnow
from observatory.together import Together
from observatory.upstream.server import UpstreamServer
from observatory.validation import resolve_build
from observatory.watchdog import ErrorRateWatch

log = logging.getLogger(__name__)
T = TypeVar("T")
TICK_S = 1.0  # how often the supervisor ingests, heartbeats and checks for an end


@dataclass(frozen=True, slots=True)
class Progress:
    run_id: int
    scenario: str
    status: str
    elapsed_s: float
    duration_s: float
    rps: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None
    gateway_rss_mb: float | None = None
    neighbours_cores: float | None = None  # CPU other processes on the host used, in cores


@dataclass
class RunContext:
    """What a run needs from its host process (CLI or service worker)."""

    settings: Settings
    sessions: sessionmaker[Session]
    worker: str
    stop: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[Progress], None] | None = None
    together: Together | None = None  # runs measured side by side with this one


@dataclass(frozen=True, slots=True)
class Outcome:
    run_id: int
    status: RunStatus
    verdict: str | None
    reason: str
    report_path: Path | None


@dataclass
class _End:
    status: RunStatus = RunStatus.DONE
    reason: str = "completed"
    crash: str | None = None
    early_verdict: bool = False  # an early abort that is itself a regression
    lost: bool = False  # the run is no longer ours: whoever holds it now ends it


def execute_run(run_id: int, ctx: RunContext) -> Outcome:
    """Execute one queued (or claimed) run to its end; never raises for run failures."""
    return _finish(run_id, ctx, _measured(run_id, ctx))


def execute_side_by_side(baseline_id: int, candidate_id: int, ctx: RunContext) -> list[Outcome]:
    """Measure a baseline and its candidate at the same time; conclude the baseline first."""
    together = Together((baseline_id, candidate_id))
    shared = replace(ctx, together=together)
    ends: dict[int, _End] = {}

    def measure(run_id: int) -> None:
        try:
            ends[run_id] = _measured(run_id, shared)
        except Exception:  # a bug: the run ends in error, its partner still concludes
            log.exception("run %s: unexpected failure in the pipeline", run_id)
            ends[run_id] = _End(RunStatus.ERROR, "unexpected failure in the pipeline (see log)")
        finally:
            together.abandon()

    beside = threading.Thread(target=measure, args=(baseline_id,), name=f"run-{baseline_id}")
    beside.start()
    measure(candidate_id)
    beside.join()
    return [_finish(run_id, ctx, ends[run_id]) for run_id in (baseline_id, candidate_id)]


def _measured(run_id: int, ctx: RunContext) -> _End:
    run_dir = _run_dir(ctx, run_id)
    ingest = SpoolIngest(ctx.sessions, run_id)
    try:
        with marking(run_id, ctx.worker):
            end = _measure(run_id, ctx, run_dir, ingest)
    except LostRunError as exc:
        log.warning("%s; stopping without a verdict", exc)
        end = _End(RunStatus.INTERRUPTED, str(exc), lost=True)  # the windows are kept
    except ObservatoryError as exc:
        log.error("run %s failed: %s", run_id, exc)
        end = _End(RunStatus.ERROR, f"observatory error: {exc}")
    except KeyboardInterrupt:
        end = _End(RunStatus.ABORTED, "interrupted (Ctrl-C)")
    try:
        _retrying(ctx, run_id, ingest.drain)  # upserts are idempotent
    except StoreError as exc:  # the spool keeps them: recovery reads it if we cannot conclude
        log.error("run %s: last windows not stored: %s", run_id, exc)
    return end


def _finish(run_id: int, ctx: RunContext, end: _End) -> Outcome:
    if end.lost:  # the run now belongs to whoever took it back (or it ended meanwhile)
        return _lost(run_id, ctx, end.reason)
    return _retrying(ctx, run_id, lambda: conclude_run(
        run_id, ctx.settings, ctx.sessions, end.status, end.reason, end.crash,
        owner=ctx.worker, early_verdict=end.early_verdict, run_dir=_run_dir(ctx, run_id),
    ))  # fmt: skip


def _retrying(ctx: RunContext, run_id: int, step: Callable[[], T]) -> T:
    """``step`` again while the database is away, for up to a lease (steps are idempotent)."""
    give_up = time.monotonic() + ctx.settings.service.lease
    while True:
        try:
            return step()
        except StoreError as exc:
            if time.monotonic() > give_up:
                raise
            log.warning("run %s: database unreachable, trying again in 1 s: %s", run_id, exc)
            time.sleep(1.0)


def _lost(run_id: int, ctx: RunContext, reason: str) -> Outcome:
    """The outcome of a run we lost: its own end if it has one (e.g. cancelled), else ours."""
    status, verdict = RunStatus.INTERRUPTED, None
    try:
        with transaction(ctx.sessions) as session:
            run = store_runs.get_run(session, run_id)
            if RunStatus(run.status).finished:
                status, verdict = RunStatus(run.status), run.verdict
    except StoreError as exc:
        log.error("run %s: its status could not be read: %s", run_id, exc)
    return Outcome(run_id, status, verdict, reason, None)


def _run_dir(ctx: RunContext, run_id: int) -> Path:
    run_dir = ctx.settings.data_dir / "runs" / str(run_id)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _measure(run_id: int, ctx: RunContext, run_dir: Path, ingest: SpoolIngest) -> _End:
    settings = ctx.settings
    run, build = _begin(run_id, ctx)
    _, build_settings = resolve_build(settings, build.name)
    gateway_settings = settings.gateways[build_settings.gateway]
    scenario = settings.scenario(run.scenario)
    with ExitStack() as stack:
        upstream = stack.enter_context(UpstreamServer(_upstream(settings, run_id, ctx.together)))
        redis = stack.enter_context(run_redis(scenario, run_dir))  # None unless needed
        gateway_settings = with_redis(gateway_settings, build_settings, redis)
        gateway = stack.enter_context(
            start_gateway(build_settings, gateway_settings, settings, upstream.url, run_dir)
        )
        faults = default_factory(
            settings, upstream.url, redis=redis, gateway=gateway, run_dir=run_dir
        )
        phases = PhaseDriver(run_id, ctx.sessions, scenario.phases, faults)
        stack.callback(phases.stop)
        sampler = ResourceSampler(ingest.add_resources, settings.load.sample_interval)
        sampler.add(gateway.resource_probe())
        sampler.add(NeighbourProbe(run_id, ctx.together.run_ids if ctx.together else ()))
        sampler.start()
        stack.callback(sampler.stop)
        started = _mark_running(run_id, ctx, gateway, upstream.url)
        load = start_load(
            scenario.model_copy(update={"duration": run.duration_s, "warmup": run.warmup_s}),
            run.scenario, gateway.base_url, gateway.api_key, run_dir, settings, run_start=started,
            overhead_header=gateway_settings.timing_header,
        )  # fmt: skip
        stack.callback(load.stop)
        sampler.watch_process("loadgen", load.pid)
        phases.begin(started)
        return _supervise(run, ctx, load, gateway, ingest, phases, started)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack never swallows here


def _upstream(settings: Settings, run_id: int, together: Together | None) -> UpstreamSettings:
    """Runs side by side draw different upstream latencies (a shared seed would pair them)."""
    seed = settings.upstream.seed
    if together is None or seed is None:
        return settings.upstream
    return settings.upstream.model_copy(update={"seed": seed + together.run_ids.index(run_id)})


def _begin(run_id: int, ctx: RunContext) -> tuple[Run, Build]:
    """Provisioning, if the run is still ours (or queued for nobody); ``LostRunError`` if not."""
    with transaction(ctx.sessions) as session:
        if not queue.begin(session, run_id, ctx.worker, ctx.settings.service.lease):
            now = queue.holder(session, run_id)
            raise LostRunError(f"run {run_id} was not begun: it is {now}")
        run = store_runs.get_run(session, run_id)
        build = session.get(Build, run.build_id)
        assert build is not None
        session.expunge_all()
    _report(ctx, run, RunStatus.PROVISIONING, 0.0)
    return run, build


def _mark_running(run_id: int, ctx: RunContext, gateway: RunningGateway, upstream: str) -> datetime:
    """Running, only if the run is still ours and provisioning (a cancel or recovery wins)."""
    started = ctx.together.start() if ctx.together else utcnow()
    environment = {
        "host": host_facts(),
        "gateway": gateway.fingerprint(),
        "upstream": upstream,
        "load_cpu_affinity": ctx.settings.load.cpu_affinity,
        **({"side_by_side": list(ctx.together.run_ids)} if ctx.together else {}),
    }
    with transaction(ctx.sessions) as session:
        queue.require(
            session,
            run_id,
            ctx.worker,
            (RunStatus.PROVISIONING,),
            status=RunStatus.RUNNING,
            started_at=started,
            environment=environment,
        )
    return started


def _supervise(
    run: Run,
    ctx: RunContext,
    load: LoadProcess,
    gateway: RunningGateway,
    ingest: SpoolIngest,
    phases: PhaseDriver,
    started: datetime,
) -> _End:
    watch = ErrorRateWatch(ctx.settings.abort, run.window_s, run.warmup_s + started.timestamp())
    deadline = time.monotonic() + run.duration_s + 120.0  # hard bound on top of Locust's own -t
    reached = time.monotonic()  # when the database last answered
    while True:
        try:
            watch.add(ingest.follow(load.spool_path))
            phases.tick()
            cancelled = _heartbeat(run, ctx, load, ingest, started)
            reached = time.monotonic()
        except StoreError as exc:
            cancelled = _unreachable(run, ctx, reached, exc)
        end = _check_end(ctx, load, gateway, watch, deadline, cancelled)
        if end is not None:
            return end
        ctx.stop.wait(TICK_S)


def _unreachable(run: Run, ctx: RunContext, reached: float, exc: StoreError) -> bool:
    """Ride out a database outage shorter than the lease (the spool keeps every window)."""
    away = time.monotonic() - reached
    if away > ctx.settings.service.lease:
        raise LostRunError(f"run {run.id}: the database was unreachable for {away:.0f} s, "
                           "longer than the lease; another worker may take it back")  # fmt: skip
    log.warning("run %s: database unreachable for %.0f s, carrying on: %s", run.id, away, exc)
    return False


def _check_end(
    ctx: RunContext,
    load: LoadProcess,
    gateway: RunningGateway,
    watch: ErrorRateWatch,
    deadline: float,
    cancelled: bool,
) -> _End | None:
    crash = gateway.crash()
    if crash is not None and ctx.settings.abort.on_crash:
        detail = f"{crash.describe()}; last log lines:\n{crash.log_tail}"
        return _End(RunStatus.DONE, f"gateway crashed: {crash.describe()}", detail, True)
    if ctx.stop.is_set():
        return _End(RunStatus.ABORTED, "stopped by the operator")
    if cancelled:
        return _End(RunStatus.ABORTED, "cancelled (observatory runs cancel)")
    breach = watch.breach()
    if breach is not None:
        return _End(RunStatus.DONE, breach, None, True)
    code = load.returncode
    if code is not None:
        if code in (0, 1):  # Locust exits 1 when any request failed: not our failure
            return _End(RunStatus.DONE, "completed")
        return _End(RunStatus.ERROR, f"load generator exited with code {code}")
    if time.monotonic() > deadline:
        return _End(RunStatus.ERROR, "load generator overran its duration; stopped")
    return None


def _heartbeat(
    run: Run, ctx: RunContext, load: LoadProcess, ingest: SpoolIngest, started: datetime
) -> bool:
    """Extend the lease (fenced on our claim) and publish progress; True if cancelled."""
    status: dict[str, Any] = load.status()
    elapsed = (utcnow() - started).total_seconds()
    progress = Progress(
        run_id=run.id,
        scenario=run.scenario,
        status=RunStatus.RUNNING,
        elapsed_s=elapsed,
        duration_s=run.duration_s,
        rps=status.get("rps"),
        p99_ms=status.get("p99_ms"),
        error_rate=status.get("error_rate"),
        gateway_rss_mb=ingest.last_gateway_rss_mb,
        neighbours_cores=ingest.last_neighbours_cores,
    )
    published = {k: v for k, v in _as_dict(progress).items() if k != "run_id"}
    with transaction(ctx.sessions) as session:
        cancelled = store_runs.heartbeat(
            session, run.id, ctx.worker, ctx.settings.service.lease, published
        )
    if cancelled is None:
        raise LostRunError(f"run {run.id}: the lease was lost; another worker took it back")
    if ctx.on_progress is not None:
        ctx.on_progress(progress)
    return cancelled


def _report(ctx: RunContext, run: Run, status: RunStatus, elapsed: float) -> None:
    if ctx.on_progress is not None:
        ctx.on_progress(Progress(run.id, run.scenario, status, elapsed, run.duration_s))


def _as_dict(progress: Progress) -> dict[str, Any]:
    return {name: getattr(progress, name) for name in Progress.__slots__}


__all__ = [
    "Outcome",
    "Progress",
    "ResourceSample",
    "RunContext",
    "execute_run",
    "execute_side_by_side",
]
