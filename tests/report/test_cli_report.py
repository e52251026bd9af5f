"""`observatory report RUN|index` through a real subprocess on a real SQLite store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_fixtures import StoredPair, sqlite_pair

from observatory.store import db
from observatory.store.db import transaction
from observatory.store.runs import get_run


def observatory(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    return subprocess.run(
        [sys.executable, "-m", "observatory", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StoredPair]:
    """A directory with observatory.yaml and a SQLite store in data/ holding the pair."""
    root = tmp_path_factory.mktemp("project")
    (root / "data").mkdir()
    with sqlite_pair(root / "data") as (_, pair):
        pass
    (root / "observatory.yaml").write_text("data_dir: data\n")
    return root, pair


def test_report_run_regenerates_page_and_index(project: tuple[Path, StoredPair]) -> None:
    tmp_path, pair = project
    reports = tmp_path / "data" / "reports"
    result = observatory("report", str(pair.candidate_id), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = reports / "runs" / str(pair.candidate_id) / "index.html"
    assert page.is_file()
    assert (reports / "index.html").is_file()
    assert f"report: {page}" in result.stdout
    engine = db.make_engine(f"sqlite:///{tmp_path / 'data' / 'observatory.db'}")
    with transaction(db.session_factory(engine)) as session:
        assert get_run(session, pair.candidate_id).report_path == str(page.resolve())
    engine.dispose()


def test_report_index_and_out_dir(project: tuple[Path, StoredPair], tmp_path: Path) -> None:
    root, _ = project
    result = observatory("report", "index", "--out", str(tmp_path / "site"), cwd=root)
    assert result.returncode == 0, result.stderr
    index = (tmp_path / "site" / "index.html").read_text()
    assert index.count('<tr class="run') == 2
    assert (tmp_path / "site" / "static" / "index.js").is_file()
    assert len(list((tmp_path / "site" / "history").glob("*.html"))) == 1


def test_bad_targets_exit_2_with_a_clear_message(project: tuple[Path, StoredPair]) -> None:
    tmp_path, _ = project
    result = observatory("report", "latest", cwd=tmp_path)
    assert result.returncode == 2
    assert "RUN must be a run id (a positive integer) or 'index'; got 'latest'" in result.stderr
    result = observatory("report", "999", cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown run 999" in result.stderr
    assert not (tmp_path / "data" / "reports" / "runs" / "999").exists()


def test_runs_list_names_build_version_verdict_and_why(project: tuple[Path, StoredPair]) -> None:
    root, pair = project
    result = observatory("runs", "list", cwd=root)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    baseline = rows[str(pair.baseline_id)]
    assert "litellm-1.80.0 1.80.0" in baseline
    assert "no_baseline" in baseline
    candidate = rows[str(pair.candidate_id)]
    assert "1.81.0rc1" in candidate
    assert candidate.endswith("regression: error rate rose at 10 min")
    shown = observatory("runs", "show", str(pair.candidate_id), cwd=root)
    assert "why:" in shown.stdout
