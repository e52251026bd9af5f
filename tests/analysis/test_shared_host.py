"""A shared host: windows beside busy neighbours are set aside (too many make a run
inconclusive), and a host slower than during the baseline makes speed-bound comparisons
inconclusive."""

from __future__ import annotations

import re

import pytest

from observatory.analysis import RunData, analyse
from observatory.analysis.host_speed import cpu_per_request_ms
from observatory.analysis.injection import add_errors, busy_neighbours, scale_latency
from observatory.analysis.metrics import view
from observatory.analysis.shared_host import set_aside, shared_windows
from observatory.analysis.synthetic import Profile, synthetic_run
from observatory.domain import FindingVerdict, Verdict
from observatory.settings import ThresholdSettings

SHORT = Profile(duration_s=1200.0, warmup_s=120.0)  # 10 s windows
TH = ThresholdSettings()


def test_a_burst_sets_aside_exactly_the_windows_it_overlaps() -> None:
    # Samples every 5 s: the ones at 305..330 s cover (300, 330]; windows 300, 310, 320.
    run = busy_neighbours(synthetic_run(SHORT, seed=1), 1.0, from_s=300.0, until_s=330.0)
    assert shared_windows(run, 0.5) == {300.0, 310.0, 320.0}
    assert shared_windows(run, 1.5) == frozenset()  # one core is under a 1.5-core limit
    assert shared_windows(run, None) == frozenset()  # the check switched off


def test_shared_windows_leave_every_view() -> None:
    run = set_aside(
        busy_neighbours(synthetic_run(SHORT, seed=2), 1.0, from_s=600.0, until_s=700.0), 0.5
    )
    steady = view(run)
    assert steady.shared_windows == 10
    assert steady.saturated_windows == 0
    assert all(not rows["t"].between(600.0, 690.0).any() for rows in steady.groups.values())


def test_a_run_beside_busy_neighbours_is_inconclusive_never_a_regression() -> None:
    slow = scale_latency(synthetic_run(SHORT, seed=3), 1.5)
    candidate = busy_neighbours(slow, 1.2, from_s=200.0, until_s=600.0)
    result = analyse(candidate, synthetic_run(SHORT, seed=4), TH)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "other processes busy on the host in 37% of steady windows" in result.reason
    assert not result.saturated  # the load generator itself was fine


def test_a_short_burst_only_removes_its_windows() -> None:
    slow = scale_latency(synthetic_run(SHORT, seed=5), 1.5)
    candidate = busy_neighbours(slow, 1.2, from_s=200.0, until_s=250.0)
    result = analyse(candidate, synthetic_run(SHORT, seed=6), TH)
    assert result.verdict is Verdict.REGRESSION  # 5 of 108 windows set aside, the rest speak


def test_a_disturbed_baseline_allows_no_comparison() -> None:
    baseline = busy_neighbours(synthetic_run(SHORT, seed=8), 2.0, from_s=120.0, until_s=400.0)
    result = analyse(synthetic_run(SHORT, seed=7), baseline, TH)
    assert result.verdict is Verdict.INCONCLUSIVE
    p50 = [f for f in result.findings if f.metric == "latency_p50"]
    assert p50
    assert all("baseline disturbed (other processes busy" in f.detail for f in p50)


def test_a_compacted_window_is_shared_when_a_burst_falls_anywhere_in_it() -> None:
    run = synthetic_run(SHORT, seed=9)
    compacted = run.windows[run.windows["t"] % 600 == 0].assign(length_s=600.0)
    run = busy_neighbours(run.with_frames(windows=compacted), 1.0, from_s=900.0, until_s=905.0)
    assert shared_windows(run, 0.5) == {600.0}


def _loadgen_cpu(run: RunData, factor: float) -> RunData:
    res = run.resources
    cpu = res["cpu_percent"].where(res["role"] != "loadgen", res["cpu_percent"] * factor)
    return run.with_frames(resources=res.assign(cpu_percent=cpu))


def test_a_slower_host_makes_speed_bound_comparisons_inconclusive() -> None:
    base = synthetic_run(SHORT, seed=10)
    slow = scale_latency(add_errors(synthetic_run(SHORT, seed=11), 0.02), 1.5)
    assert cpu_per_request_ms(_loadgen_cpu(slow, 1.2)) == pytest.approx(
        1.2 * cpu_per_request_ms(slow)
    )
    result = analyse(_loadgen_cpu(slow, 1.2), base, TH)  # the generator's CPU per request +20 %
    by_metric = {(f.metric, f.name): f for f in result.findings}
    p99 = by_metric[("latency_p99", "chat")]
    assert p99.verdict is FindingVerdict.INCONCLUSIVE
    assert "host speed differed" in p99.detail
    assert re.search(r"\+(19|20|21)% against the baseline's", p99.detail)
    errors = by_metric[("error_rate", "*")]
    assert errors.verdict is FindingVerdict.REGRESSION  # a slower host does not make errors
    assert result.verdict is Verdict.REGRESSION


def test_host_speed_within_tolerance_compares_as_usual() -> None:
    base = synthetic_run(SHORT, seed=12)
    slow = _loadgen_cpu(scale_latency(synthetic_run(SHORT, seed=13), 1.5), 1.03)
    p99 = [f for f in analyse(slow, base, TH).findings if f.metric == "latency_p99"]
    assert p99
    assert all(f.verdict is FindingVerdict.REGRESSION for f in p99)
