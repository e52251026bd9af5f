"""load_report_input and load_index_rows against the real store (SQLite and Postgres)."""

from __future__ import annotations

import json

import pytest
from report_fixtures import (
    BURST_AT_S,
    EVIL_BUILD,
    EVIL_MESSAGE,
    WARMUP_S,
    StoredPair,
    histogram_of,
)
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import FindingVerdict, Series, Verdict
from observatory.errors import NotFoundError
from observatory.report import load_index_rows, load_report_input, render_run_report
from observatory.store.db import transaction


def test_report_input_from_the_store(
    sessions: sessionmaker[Session], stored_pair: StoredPair
) -> None:
    with transaction(sessions) as session:
        inp = load_report_input(session, stored_pair.candidate_id)
    assert inp.run.id == stored_pair.candidate_id
    assert inp.build.name == EVIL_BUILD
    assert inp.build.version == "1.81.0rc1"
    assert inp.baseline is not None
    assert inp.baseline.run_id == stored_pair.baseline_id
    assert inp.baseline.build.channel == "stable"
    assert len(inp.candidate.windows) == stored_pair.window_counts[stored_pair.candidate_id]
    assert inp.baseline_data is not None
    assert len(inp.baseline_data.windows) == stored_pair.window_counts[stored_pair.baseline_id]
    # t is seconds since the run started, on window boundaries
    latency = inp.candidate.windows[inp.candidate.windows["series"] == Series.LATENCY]
    assert latency["t"].min() == 0.0
    assert set((latency["t"] % 10.0).round(6)) == {0.0}
    assert [p.fault for p in inp.candidate.phases] == ["provider_slow"]
    assert inp.run.environment["config_hash"] == "cfg42"
    assert inp.run.tags[0] == "nightly"


def test_stored_findings_stand_in_for_the_analysis(
    sessions: sessionmaker[Session], stored_pair: StoredPair
) -> None:
    with transaction(sessions) as session:
        inp = load_report_input(session, stored_pair.candidate_id)
    analysis = inp.analysis
    assert analysis.verdict == Verdict.REGRESSION
    assert len(analysis.findings) == 7
    assert {f.verdict for f in analysis.findings} == set(FindingVerdict)
    [point] = analysis.change_points
    assert (point.series, point.name, point.at_s) == ("error_rate", "chat", BURST_AT_S)
    assert (point.before, point.after) == (0.0, 20.0)
    assert analysis.saturated is False


def test_error_groups_sum_counts_and_keep_first_messages(
    sessions: sessionmaker[Session], stored_pair: StoredPair
) -> None:
    with transaction(sessions) as session:
        inp = load_report_input(session, stored_pair.candidate_id)
    groups = {(g.name, g.category): g for g in inp.errors}
    http = groups[("chat", "http_500")]
    assert http.count == 6 * 30
    assert http.first_t == BURST_AT_S
    assert http.messages[0] == EVIL_MESSAGE
    assert len(http.messages) == 5  # the first distinct messages only
    assert groups[("chat", "timeout")].count == 2 * 30


def test_unknown_run_is_a_clear_error(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session, pytest.raises(NotFoundError, match="unknown run 999"):
        load_report_input(session, 999)


def test_index_rows_carry_exact_steady_state_summaries(
    sessions: sessionmaker[Session], stored_pair: StoredPair
) -> None:
    with transaction(sessions) as session:
        rows = {row.run_id: row for row in load_index_rows(session)}
    cand = rows[stored_pair.candidate_id]
    base = rows[stored_pair.baseline_id]
    assert cand.build == EVIL_BUILD
    assert base.channel == "stable"
    assert cand.baseline_run_id == stored_pair.baseline_id
    for run_id, row in ((cand.run_id, cand), (base.run_id, base)):
        # exact: the p99 of one histogram of every steady-state latency, all names merged
        truth = histogram_of(stored_pair.raw_latencies[run_id]).get_value_at_percentile(99)
        assert row.summary.p99_ms == truth / 1000.0
    # errors: 8 of 40 chat requests per window after 10 min, of 120 requests per window
    burst_windows = (900 - BURST_AT_S) / 10
    steady_windows = (900 - WARMUP_S) / 10
    assert cand.summary.error_rate == pytest.approx(8 * burst_windows / (120 * steady_windows))
    assert base.summary.error_rate == 0.0
    assert cand.summary.memory_slope_mb_h == 24.0  # the analysis' finding
    assert base.summary.memory_slope_mb_h == pytest.approx(3.0, abs=0.5)  # Theil-Sen fallback


def test_index_uses_the_summary_cached_with_the_page(
    sessions: sessionmaker[Session], stored_pair: StoredPair, tmp_path
) -> None:
    with transaction(sessions) as session:
        inp = load_report_input(session, stored_pair.candidate_id)
    render_run_report(inp, tmp_path)
    cache = tmp_path / "runs" / str(stored_pair.candidate_id) / "summary.json"
    record = json.loads(cache.read_text())
    record["p99_ms"] = 12345.0  # proves the cache is read rather than recomputed
    cache.write_text(json.dumps(record))
    with transaction(sessions) as session:
        rows = {row.run_id: row for row in load_index_rows(session, tmp_path)}
    assert rows[stored_pair.candidate_id].summary.p99_ms == 12345.0
    # a changed run invalidates its cache
    record["status"] = "running"
    cache.write_text(json.dumps(record))
    with transaction(sessions) as session:
        rows = {row.run_id: row for row in load_index_rows(session, tmp_path)}
    assert rows[stored_pair.candidate_id].summary.p99_ms != 12345.0
