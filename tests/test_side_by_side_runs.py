"""A baseline and its candidate measured side by side, with real processes on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import RunStatus, TriggerSource, Verdict
from observatory.environment import host_facts, host_fingerprint
from observatory.pipeline import RunContext, execute_side_by_side
from observatory.settings import Settings, load_settings
from observatory.store import queue
from observatory.store.db import transaction
from observatory.store.tables import FindingRow, Run, WindowRow
from observatory.validation import ValidationRequest, plan
from tests.processes import children_of_us
from tests.test_pipeline import CONFIG

SIDE_BY_SIDE = CONFIG.replace('version: "1.0"}', 'version: "1.0", channel: stable}').replace(
    "  gone:",
    '  steady-next: {gateway: toy, command: "{GATEWAY}", version: "1.1"}\n'
    '  missing: {gateway: toy, command: "/nonexistent/gateway --port {port}", version: "2"}\n'
    "  gone:",
)


@pytest.fixture
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """SQLite only: the pipeline does not depend on the database (the queue test covers both)."""
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'observatory.db'}"


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    from tests.test_pipeline import GATEWAY

    path = tmp_path / "observatory.yaml"
    path.write_text(SIDE_BY_SIDE.replace("{GATEWAY}", GATEWAY))
    return load_settings(path, environ={"OBSERVATORY_DATABASE_URL": db_url})


def _plan(sessions: sessionmaker[Session], settings: Settings, build: str) -> tuple[int, int]:
    request = ValidationRequest(
        build=build, scenarios=("chat",), source=TriggerSource.CLI, baseline="alongside"
    )
    with transaction(sessions) as session:
        base, cand = plan(session, settings, request, host_fingerprint(host_facts())).run_ids
        assert queue.alongside_of(session, base) == cand
    return base, cand


def test_both_runs_load_over_the_same_seconds_and_are_compared_window_by_window(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    base_id, cand_id = _plan(sessions, settings, "steady-next")
    base, cand = execute_side_by_side(base_id, cand_id, RunContext(settings, sessions, "test"))
    assert (base.status, cand.status) == (RunStatus.DONE, RunStatus.DONE), (base, cand)
    assert cand.verdict in (Verdict.PASS, Verdict.INCONCLUSIVE), cand.reason
    with transaction(sessions) as session:
        runs = [session.get(Run, i) for i in (base_id, cand_id)]
        starts = {r.started_at for r in runs if r}
        together = [r.environment["side_by_side"] for r in runs if r]
        grids = [
            set(session.scalars(select(WindowRow.start).where(WindowRow.run_id == i)))
            for i in (base_id, cand_id)
        ]
        details = session.scalars(
            select(FindingRow.detail).where(
                FindingRow.run_id == cand_id, FindingRow.metric == "latency_p99"
            )
        ).all()
    assert len(starts) == 1  # one start for both
    assert together == [[base_id, cand_id]] * 2
    assert len(grids[0] & grids[1]) >= 8  # the same windows, second by second
    assert details
    assert all("side by side: " in d for d in details)
    assert cand.report_path is not None
    assert "Measured side by side" in cand.report_path.read_text()
    assert children_of_us() == []


def test_when_one_side_cannot_start_neither_measures(
    settings: Settings, engine: object, sessions: sessionmaker[Session]
) -> None:
    base_id, cand_id = _plan(sessions, settings, "missing")
    base, cand = execute_side_by_side(base_id, cand_id, RunContext(settings, sessions, "test"))
    assert cand.status == RunStatus.ERROR
    assert base.status == RunStatus.ERROR
    assert "did not get ready" in base.reason
    with transaction(sessions) as session:
        windows = session.scalars(select(WindowRow).where(WindowRow.run_id == base_id)).all()
    assert windows == []
    assert children_of_us() == []
