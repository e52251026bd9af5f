"""The lifecycle scenario provokes lifecycle faults, and the analysis flags them.

Real processes on loopback: the mock upstream, the lifecycle toy gateway (a baseline
without the fault, a candidate with it) measured side by side, and Locust running the
built-in ``lifecycle.py`` with short gaps and a small fleet.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import RunStatus, TriggerSource, Verdict
from observatory.environment import host_facts, host_fingerprint
from observatory.pipeline import Outcome, RunContext, execute_side_by_side
from observatory.settings import Settings
from observatory.store.db import transaction
from observatory.store.samples import sample_messages
from observatory.store.tables import ErrorSampleRow, FindingRow, ResourceSampleRow, WindowRow
from observatory.validation import ValidationRequest, plan
from tests.processes import children_of_us

SCRIPT = Path(__file__).parent / "fixtures" / "lifecycle_gateway.py"
COMMAND = f"{sys.executable} {SCRIPT} --host {{host}} --port {{port}} --config {{config}}"

PARAMS: dict[str, Any] = {
    "models": {"gpt-4o-mini": 0.5, "gpt-4o": 0.5},
    "start_after": {"gpt-4o": "3s"},
    "idle": {"gpt-4o-mini": {"every": "8s", "for": "2s"}},
    "fleet": 30,
    "fleet_share": 0.3,
    "stream_share": 0.3,
    "abandon_share": 0.0,
    "cancel_share": 0.0,
    "long_share": 0.0,
    "timeout": 3,
}


def settings(
    tmp_path: Path, db_url: str, fault: str, params: dict[str, Any], sound: str = ""
) -> Settings:
    """A sound build (``good``, the baseline) and the same gateway with ``fault`` (``bad``)."""
    values: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "database_url": db_url,
        "gateways": {"toy": {"kind": "openai", "readiness_timeout": "30s", "timing_header": None}},
        "builds": {
            "good": {
                "gateway": "toy",
                "command": f"{COMMAND} {sound}",
                "version": "1",
                "channel": "stable",
            },
            "bad": {"gateway": "toy", "command": f"{COMMAND} {fault}", "version": "2"},
        },
        "scenarios": {
            "lifecycle": {
                "file": "lifecycle.py",
                "profile": {"model": "closed", "users": 2, "wait_min": "50ms", "wait_max": "50ms"},
                "duration": "12s",
                "warmup": "2s",
                "window": "1s",
                "params": {**PARAMS, **params},
            }
        },
        "upstream": {
            "seed": 5,
            "latency": {"distribution": "fixed", "mean": "5ms"},
            "stream": {"ttft": "20ms", "chunks": 5, "chunk_delay": "10ms"},
        },
        # these tests judge the faults; the host they run on may be shared
        "thresholds": {"neighbour_cpu": None, "min_windows": 6},
        "load": {"sample_interval": "1s", "saturation_cpu": 1.0},
    }
    return Settings.model_validate(values)


def side_by_side(settings: Settings, sessions: sessionmaker[Session]) -> tuple[int, Outcome]:
    request = ValidationRequest(
        build="bad", scenarios=("lifecycle",), source=TriggerSource.CLI, baseline="alongside"
    )
    with transaction(sessions) as session:
        base_id, cand_id = plan(session, settings, request, host_fingerprint(host_facts())).run_ids
    base, cand = execute_side_by_side(base_id, cand_id, RunContext(settings, sessions, "test"))
    assert base.status == RunStatus.DONE, base.reason
    assert children_of_us() == []
    return base_id, cand


def assert_flagged(sessions: sessionmaker[Session], cand: Outcome, *metrics: str) -> None:
    """A regression flagged on one of ``metrics`` (errors and log volume are judged on a busy
    host too: it cannot cause them)."""
    assert cand.verdict == Verdict.REGRESSION, cand.reason
    with transaction(sessions) as session:
        flagged = session.scalars(
            select(FindingRow.metric).where(
                FindingRow.run_id == cand.run_id, FindingRow.verdict == "regression"
            )
        ).all()
    assert any(m.startswith(metrics) for m in flagged), (flagged, cand.reason)


@pytest.fixture
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'observatory.db'}"


def test_clients_closed_by_their_cache_fail_a_deployment_and_the_run(
    tmp_path: Path, db_url: str, engine: object, sessions: sessionmaker[Session]
) -> None:
    fault = "--client-ttl 3 --cache-size 20 --router-refresh 2"
    base_id, cand = side_by_side(settings(tmp_path, db_url, fault, {}), sessions)
    assert_flagged(sessions, cand, "error_rate", "error_ceiling")
    with transaction(sessions) as session:
        messages = session.scalars(
            select(ErrorSampleRow.messages).where(ErrorSampleRow.run_id == cand.run_id)
        ).all()
        base_errors = session.scalar(
            select(func.coalesce(func.sum(ErrorSampleRow.count), 0)).where(
                ErrorSampleRow.run_id == base_id
            )
        )
        names = set(session.scalars(select(WindowRow.name).where(WindowRow.run_id == base_id)))
    samples = [m for row in messages for m in sample_messages(row)]
    assert any("client has been closed" in m for m in samples), samples
    assert base_errors == 0  # the same traffic through a sound gateway: no errors at all
    assert {"chat:gpt-4o", "chat:gpt-4o-mini", "chat:fleet"} <= names


def test_stream_slots_leaked_by_abandoned_streams_hang_the_gateway(
    tmp_path: Path, db_url: str, engine: object, sessions: sessionmaker[Session]
) -> None:
    params = {"stream_share": 0.8, "abandon_share": 0.5, "abandon_after": 2, "fleet": 0}
    fault = "--stream-slots 24 --leak-abandoned"
    pair = settings(tmp_path, db_url, fault, params, sound="--stream-slots 24")
    base_id, cand = side_by_side(pair, sessions)
    assert_flagged(sessions, cand, "error_rate", "error_ceiling")
    with transaction(sessions) as session:
        abandoned = session.scalar(
            select(func.sum(WindowRow.count)).where(
                WindowRow.run_id == base_id, WindowRow.series == "abandoned"
            )
        )
        base_failures = session.scalar(
            select(func.sum(WindowRow.failures)).where(WindowRow.run_id == base_id)
        )
        hung = session.scalars(
            select(ErrorSampleRow.messages).where(ErrorSampleRow.run_id == cand.run_id)
        ).all()
    assert (abandoned or 0) > 24  # more than the slots: a leak would have hung it
    assert base_failures == 0  # abandoned streams are the client's choice, not failures
    samples = [m for row in hung for m in sample_messages(row)]
    assert any("timed out" in m for m in samples), samples  # once the slots ran out


def test_a_log_flood_per_request_is_flagged(
    tmp_path: Path, db_url: str, engine: object, sessions: sessionmaker[Session]
) -> None:
    params = {"fleet": 0, "stream_share": 0.2}
    pair = settings(tmp_path, db_url, "--log-bytes 4000", params, sound="--log-bytes 40")
    base_id, cand = side_by_side(pair, sessions)
    assert_flagged(sessions, cand, "log_bytes_per_request")
    with transaction(sessions) as session:
        written = [
            session.scalar(
                select(func.sum(ResourceSampleRow.log_bytes)).where(
                    ResourceSampleRow.run_id == run_id, ResourceSampleRow.role == "gateway"
                )
            )
            or 0
            for run_id in (base_id, cand.run_id)
        ]
    assert written[1] > 10 * written[0] > 0  # counted from the gateway's own output
