"""Real side-by-side pairs accumulate in a results file (benchmarks/real_pairs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from observatory.pipeline import RunContext, execute_side_by_side
from observatory.settings import PROJECT_ROOT, Settings
from tests.test_side_by_side_runs import _plan, db_url, settings  # noqa: F401 (fixtures)

sys.path.insert(0, str(PROJECT_ROOT / "benchmarks"))
import real_pairs


def test_a_real_pair_is_recorded_once_with_every_shape_and_summarised(
    settings: Settings,  # noqa: F811
    engine: object,
    sessions: sessionmaker[Session],
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    base_id, cand_id = _plan(sessions, settings, "steady-next")
    execute_side_by_side(base_id, cand_id, RunContext(settings, sessions, "test"))
    path = tmp_path / "results" / "pairs.jsonl"
    assert real_pairs.record(db_url, "chat", path) == 1
    assert real_pairs.record(db_url, "chat", path) == 0  # a pair is recorded once
    [line] = real_pairs.read(path)
    assert (line["baseline_run"], line["candidate_run"]) == (base_id, cand_id)
    assert line["config_hash"]
    assert line["host_speed_ms"]["candidate"] is not None
    assert set(line["shapes"]) == set(real_pairs.shapes())
    assert {s["verdict"] for s in line["shapes"].values()} <= {
        "pass",
        "regression",
        "inconclusive",
        "no_baseline",
    }
    assert line["shapes"]["bursty errors on 1 of 2 names"]["flagged"]  # ~25 % of chat fails
    table = real_pairs.summary(real_pairs.read(path))
    assert table.startswith("chat, 0.2-minute pairs: 1")
    assert "| memory level +20 % (busy host) |" in table
