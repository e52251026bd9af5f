"""A realistic candidate/baseline pair stored through the real store tables.

Windows carry real HDR histograms of generated latencies; the candidate has an error burst
(with a stored change-point finding), a slow memory leak and a fault phase; user-provided
strings carry markup so that every page is also an escaping test.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hdrh.histogram import HdrHistogram
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import ErrorSample, ResourceSample, Series, Window
from observatory.store import db, samples
from observatory.store.builds import upsert_build
from observatory.store.db import transaction
from observatory.store.tables import Build, FaultPhaseRow, FindingRow, Run

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "report"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DURATION_S = 900.0
WARMUP_S = 60.0
WINDOW_S = 10.0
BURST_AT_S = 600.0
EVIL_BUILD = "<script>window.__pwned = 1</script>litellm-dev"
EVIL_TAG = '<img src=x onerror="window.__pwned = 2">'
EVIL_MESSAGE = '500 {"error": "</script><script>window.__pwned = 3</script>"}'
EVIL_NAME = "chat</script><b>bold</b>"
SECRET = "sk-live-TOPSECRET-123456"


@dataclass(frozen=True)
class StoredPair:
    candidate_id: int
    baseline_id: int
    raw_latencies: dict[int, list[int]]  # run id -> every steady-state latency (ms)
    window_counts: dict[int, int]  # run id -> windows stored


def histogram_of(values_ms: list[int]) -> HdrHistogram:
    """As the load plugin records: microseconds, 1 us .. 1 h, 3 significant digits."""
    hist = HdrHistogram(1, 3_600_000_000, 3)
    for value in values_ms:
        hist.record_value(value * 1000)
    return hist


def _window(series: str, name: str, t: float, values: list[int], failures: int) -> Window:
    hist = histogram_of(values)

    def p(q: float) -> float:
        return hist.get_value_at_percentile(q) / 1000.0

    return Window(
        series=series,
        name=name,
        start=T0 + timedelta(seconds=t),
        length_s=WINDOW_S,
        count=len(values),
        failures=failures,
        histogram=hist.encode().decode("ascii"),
        p50=p(50),
        p90=p(90),
        p95=p(95),
        p99=p(99),
        p999=p(99.9),
        max=hist.get_max_value() / 1000.0,
    )


def _latencies(rng: random.Random, n: int, median_ms: float) -> list[int]:
    return [max(1, int(rng.lognormvariate(math.log(median_ms), 0.35))) for _ in range(n)]


@functools.cache
def _windows(seed: int, slow: float, burst: bool) -> tuple[list[Window], list[int]]:
    """Windows of every series and the steady-state latencies (cached: tests share them)."""
    rng = random.Random(seed)
    out: list[Window] = []
    steady: list[int] = []
    for i in range(int(DURATION_S / WINDOW_S)):
        t = i * WINDOW_S
        in_burst = burst and t >= BURST_AT_S
        for name, median in (("chat", 60.0 * slow), (EVIL_NAME, 45.0), ("chat_stream", 300.0)):
            values = _latencies(rng, 40, median)
            failures = (8 if in_burst else 0) if name == "chat" else 0
            out.append(_window(Series.LATENCY, name, t, values, failures))
            out.append(_window(Series.OVERHEAD, name, t, _latencies(rng, 40, 4.0), 0))
            if t >= WARMUP_S:
                steady.extend(values)
        out.append(_window(Series.TTFT, "chat_stream", t, _latencies(rng, 40, 90.0), 0))
        out.append(_window(Series.INTER_CHUNK, "chat_stream", t, _latencies(rng, 200, 12.0), 0))
    return out, steady


def _resources(leak_mb_h: float) -> list[ResourceSample]:
    out = []
    for i in range(int(DURATION_S / 5)):
        t = i * 5.0
        wobble = 3.0 * math.sin(i / 7.0)
        gateway_mb = 310.0 + leak_mb_h * t / 3600.0 + wobble / 30.0
        for role, rss, cpu in (("gateway", gateway_mb, 42.0), ("loadgen", 120.0, 25.0)):
            out.append(
                ResourceSample(
                    at=T0 + timedelta(seconds=t),
                    role=role,
                    rss_mb=rss,
                    uss_mb=rss - 40.0 if role == "gateway" else None,
                    cpu_percent=cpu + wobble,
                    threads=12,
                    fds=40,
                    connections=10,
                    processes=2,
                )
            )
    return out


def _errors() -> list[ErrorSample]:
    out = []
    for i in range(int((DURATION_S - BURST_AT_S) / WINDOW_S)):
        start = T0 + timedelta(seconds=BURST_AT_S + i * WINDOW_S)
        out.append(ErrorSample("chat", start, "http_500", 6, (EVIL_MESSAGE, f"upstream 500 #{i}")))
        out.append(ErrorSample("chat", start, "timeout", 2, ("read timeout after 30s",)))
    return out


def _run(session: Session, build: Build, **fields: object) -> Run:
    run = Run(
        build_id=build.id,
        scenario="chat-mixed",
        profile={"model": "closed", "users": 20, "spawn_rate": 5.0},
        duration_s=DURATION_S,
        warmup_s=WARMUP_S,
        window_s=WINDOW_S,
        status="done",
        started_at=T0,
        ended_at=T0 + timedelta(seconds=DURATION_S),
        environment={
            "host": "bench-01",
            "cpu_count": 2,
            "python": "3.11.9",
            "locust": "2.41",
            "gateway": {"version": "x", "master_key": SECRET},
        },
        host_fingerprint="abc123",
        config_hash="cfg42",
        **fields,
    )
    session.add(run)
    session.flush()
    return run


def _findings(run_id: int) -> list[FindingRow]:
    def row(metric: str, name: str, verdict: str, **kw: object) -> FindingRow:
        return FindingRow(run_id=run_id, metric=metric, name=name, verdict=verdict, **kw)

    return [
        row("latency_p50", "chat", "unchanged", baseline=60.1, candidate=61.0, delta=0.015,
            ci_low=-0.01, ci_high=0.03, p_value=0.41, threshold=0.10, unit="ms"),
        row("latency_p99", "chat", "regression", baseline=130.0, candidate=163.0, delta=0.254,
            ci_low=0.18, ci_high=0.33, p_value=0.0001, threshold=0.10, unit="ms"),
        row("error_rate", "*", "regression", baseline=0.0, candidate=5.8, delta=5.8,
            ci_low=4.9, ci_high=6.6, p_value=0.00001, threshold=0.5, unit="%"),
        row("change.error_rate", "chat", "regression", baseline=0.0, candidate=20.0, delta=20.0,
            threshold=0.5, unit="pp", at_s=BURST_AT_S,
            detail="errors of chat rose from 0 % to 20 % at 10 min"),
        row("latency_p99", EVIL_NAME, "improvement", baseline=100.0, candidate=80.0,
            delta=-0.2, ci_low=-0.25, ci_high=-0.15, p_value=0.001, threshold=0.10, unit="ms"),
        row("ttft_p99", "chat_stream", "inconclusive", baseline=150.0, candidate=170.0,
            delta=0.133, ci_low=-0.02, ci_high=0.3, p_value=0.09, threshold=0.10, unit="ms",
            detail="<i>not enough windows</i>"),
        row("memory_leak", "*", "regression", baseline=0.5, candidate=24.0, delta=24.0,
            ci_low=18.0, ci_high=30.0, threshold=5.0, unit="MB/h"),
    ]  # fmt: skip


def store_pair(sessions: sessionmaker[Session]) -> StoredPair:
    with transaction(sessions) as session:
        stable = upsert_build(session, "litellm-1.80.0", "litellm", "1.80.0", "pip", "x==1.80.0")
        stable.channel = "stable"
        cand_build = upsert_build(session, EVIL_BUILD, "litellm", "1.81.0rc1", "command", "run")
        base = _run(session, stable, role="baseline", verdict="no_baseline")
        cand = _run(
            session,
            cand_build,
            baseline_run_id=base.id,
            verdict="regression",
            end_reason="regression: error rate rose at 10 min",
            tags=["nightly", EVIL_TAG],
            parameters={"model": "gpt-4o-mini", "max_tokens": 256, "api_key": SECRET},
        )
        base_windows, base_raw = _windows(7, slow=1.0, burst=False)
        cand_windows, cand_raw = _windows(8, slow=1.25, burst=True)
        samples.add_windows(session, base.id, base_windows)
        samples.add_windows(session, cand.id, cand_windows)
        samples.add_resource_samples(session, base.id, _resources(3.0))
        samples.add_resource_samples(session, cand.id, _resources(24.0))
        samples.add_error_samples(session, cand.id, _errors())
        session.add(FaultPhaseRow(run_id=cand.id, fault="provider_slow", start_offset_s=300.0,
                                  duration_s=60.0, params={"added_latency": 0.2}))  # fmt: skip
        session.add_all(_findings(cand.id))
        return StoredPair(
            candidate_id=cand.id,
            baseline_id=base.id,
            raw_latencies={cand.id: cand_raw, base.id: base_raw},
            window_counts={cand.id: len(cand_windows), base.id: len(base_windows)},
        )


@contextlib.contextmanager
def sqlite_pair(directory: Path) -> Iterator[tuple[sessionmaker[Session], StoredPair]]:
    """A migrated SQLite store in ``directory`` holding the pair; disposed afterwards."""
    engine = db.make_engine(f"sqlite:///{directory / 'observatory.db'}")
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    try:
        yield sessions, store_pair(sessions)
    finally:
        engine.dispose()
