"""A real LiteLLM proxy with Redis on its hot path goes through redis-down in a short run.

LiteLLM 1.81.9 from the cached venv, its response cache (and router state) in the run's
private Redis behind the fault proxy. During the phase the proxy black-holes Redis: every
request waits for its cache lookup to time out (cache_params.socket_timeout, 1 s here),
then LiteLLM fails open. Afterwards the proxy heals, LiteLLM reconnects, latency recovers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import FindingVerdict, RunStatus
from observatory.pipeline import RunContext, execute_run
from observatory.settings import Settings
from observatory.store.db import transaction
from observatory.store.tables import FaultPhaseRow, FindingRow, Run, WindowRow
from tests.faults.conftest import queue_run

pytestmark = pytest.mark.slow

STABLE = "litellm[proxy]==1.81.9"
CHAT = "chat:gpt-4o-mini"  # the data-plane request name of the fault traffic
AT, FOR = 30.0, 24.0


@pytest.fixture
def litellm_settings(tmp_path: Path) -> Settings:
    cache = {"litellm_settings": {"cache_params": {"socket_timeout": 1.0}}}
    return Settings.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "gateways": {"litellm": {"readiness_timeout": "180s", "proxy_config": cache}},
            "builds": {"stable": {"gateway": "litellm", "pip": STABLE}},
            "scenarios": {
                "redis-down": {
                    "file": "redis_down.py",
                    "profile": {"users": 4, "spawn_rate": 10, "wait_min": 0.1, "wait_max": 0.1},
                    "duration": "80s",
                    "warmup": "10s",
                    "window": "2s",
                    "params": {"stream_share": 0.25},
                    "phases": [
                        {
                            "at": AT,
                            "fault": "redis_down",
                            "duration": FOR,
                            "params": {"mode": "blackhole", "max_recovery": "30s"},
                        }
                    ],
                }
            },
            "upstream": {"seed": 5, "latency": {"distribution": "fixed", "mean": "20ms"}},
            # a busy shared host must not make the run inconclusive (saturated load generator,
            # busy neighbours): these tests judge the fault logic, not the host
            "load": {"sample_interval": "2s", "saturation_cpu": 1.0},
            "thresholds": {"neighbour_cpu": None},
            "abort": {"error_rate": 0.9},
        }
    )


def stored(sessions: sessionmaker[Session], table: Any, run_id: int) -> list[Any]:
    with transaction(sessions) as session:
        rows = list(session.scalars(select(table).where(table.run_id == run_id)))
        session.expunge_all()
    return rows


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_litellm_through_redis_down(
    litellm_settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    run_id = queue_run(sessions, litellm_settings, "redis-down", build="stable")
    outcome = execute_run(run_id, RunContext(litellm_settings, sessions, "test"))
    assert outcome.status == RunStatus.DONE, outcome.reason
    [phase] = stored(sessions, FaultPhaseRow, run_id)
    during = phase.measured["during"]
    assert during["mode"] == "blackhole"
    assert during["blackholed"] >= 1  # LiteLLM's Redis connections went into the hole
    assert during["discarded_bytes"] > 0
    assert phase.measured["reset_when_healed"] >= 1
    assert phase.measured["redis_answers_after"] is True
    windows = stored(sessions, WindowRow, run_id)
    chat = [w for w in windows if w.series == "latency" and w.name == CHAT and w.count]
    run_start = _run_start(sessions, run_id)

    def offset(window: WindowRow) -> float:
        return (window.start - run_start).total_seconds()

    calm = [w.p50 for w in chat if 10 <= offset(w) < AT - 2]
    inside = [w.p50 for w in chat if AT + 4 <= offset(w) < AT + FOR - 4]
    after = [w.p50 for w in chat if offset(w) >= AT + FOR + 6]
    assert all((calm, inside, after)), "every part of the timeline needs windows"
    assert max(calm) < 500.0
    # every request waited for its cache lookup to time out; the typical window shows the
    # configured 1 s (with LiteLLM's own 5 s default no window would be under 5 s), while
    # some requests wait about 5 s more (measured; LiteLLM's defaults, not the config's)
    assert min(inside) >= 900.0
    assert min(inside) < 2000.0
    assert max(after) < 500.0  # LiteLLM reconnected to the healed Redis
    assert sum(w.failures for w in chat) == 0  # LiteLLM fails open: slow, never failing
    findings = stored(sessions, FindingRow, run_id)
    [impact] = [
        f for f in findings if f.metric == "phase.redis_down.impact.latency_p99" and f.name == CHAT
    ]
    assert impact.delta is not None
    assert impact.delta > 2.0
    [recovery] = [f for f in findings if f.metric == "phase.redis_down.gate.recovery"]
    assert recovery.verdict != FindingVerdict.INCONCLUSIVE, recovery.detail  # it was measured
    assert outcome.report_path is not None
    report = outcome.report_path.read_text()
    assert 'id="phases"' in report
    assert "fault: redis_down" in report
    assert "sk-observatory-local" not in report


def _run_start(sessions: sessionmaker[Session], run_id: int) -> Any:
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run.started_at
