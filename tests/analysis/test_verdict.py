"""analyse() end to end on synthetic runs with known answers."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from scipy import stats

from observatory.analysis import Analysis, RunData, analyse
from observatory.analysis.injection import add_errors, add_leak, saturate, scale_latency
from observatory.analysis.synthetic import Profile, synthetic_run
from observatory.domain import FaultPhase, FindingVerdict, Verdict
from observatory.errors import InputError
from observatory.settings import MetricThreshold, ThresholdSettings

SHORT = Profile(duration_s=1200.0, warmup_s=120.0)  # 108 steady windows of 10 s
HOUR = Profile()
TH = ThresholdSettings()


def _run(seed: int, profile: Profile = SHORT) -> RunData:
    return synthetic_run(profile, seed=seed)


def _regressions(result: Analysis, metric: str | None = None) -> list:
    return [
        f
        for f in result.findings
        if f.verdict is FindingVerdict.REGRESSION and (metric is None or f.metric == metric)
    ]


def test_aa_false_positive_bound() -> None:
    # 200 independent A/A pairs of one-hour runs (every run its own seed, so
    # run-to-run noise is included). Target: at most 1 % of runs flagged. If the
    # true rate were exactly 1 %, more than 6 of 200 would happen with probability
    # P(X > 6) = 0.43 %. (The rate depends on run length: see docs/statistics.md.)
    bound = 6
    assert stats.binom.sf(bound, 200, 0.01) < 0.005
    flagged = [
        seed
        for seed in range(200)
        if analyse(_run(10_000 + 2 * seed, HOUR), _run(10_001 + 2 * seed, HOUR), TH).verdict
        is Verdict.REGRESSION
    ]
    assert len(flagged) <= bound, f"A/A pairs flagged: {flagged}"


def test_pass() -> None:
    result = analyse(_run(1), _run(2), TH)
    assert result.verdict is Verdict.PASS
    assert result.reason.startswith("no regression in ")
    assert not result.saturated
    assert any(f.verdict is FindingVerdict.UNCHANGED for f in result.findings)


def test_p99_regression_with_evidence() -> None:
    result = analyse(scale_latency(_run(3), 1.3, names=["chat"]), _run(4), TH)
    assert result.verdict is Verdict.REGRESSION
    [finding] = [f for f in _regressions(result, "latency_p99") if f.name == "chat"]
    assert result.reason.startswith("p99 latency of chat +")
    assert finding.delta == pytest.approx(0.3, abs=0.06)
    assert finding.ci_low is not None
    assert finding.ci_low > 0.05
    assert finding.p_value is not None
    assert finding.p_value < 0.05
    assert finding.threshold == 0.06
    assert finding.unit == "ms"
    assert result.findings[0].verdict is FindingVerdict.REGRESSION  # sorted by severity


def test_improvement_passes() -> None:
    result = analyse(scale_latency(_run(5), 0.7), _run(6), TH)
    assert result.verdict is Verdict.PASS
    improved = [f for f in result.findings if f.verdict is FindingVerdict.IMPROVEMENT]
    assert {f.metric for f in improved} >= {"latency_p99"}
    assert all(f.delta is not None and f.delta < -0.06 for f in improved)


def test_overrides_raise_the_bar() -> None:
    candidate = scale_latency(_run(7), 1.15)
    assert analyse(candidate, _run(8), TH).verdict is Verdict.REGRESSION
    relaxed = analyse(candidate, _run(8), TH, {"latency_p99": MetricThreshold(relative=0.5)})
    assert relaxed.verdict is not Verdict.REGRESSION


def test_error_rate_regression_in_percentage_points() -> None:
    result = analyse(add_errors(_run(9), 0.01, seed=1), _run(10), TH)
    assert result.verdict is Verdict.REGRESSION
    [overall] = [f for f in _regressions(result, "error_rate") if f.name == "*"]
    assert overall.unit == "%"
    assert overall.delta == pytest.approx(1.0, abs=0.3)  # percentage points
    assert overall.threshold == pytest.approx(0.25)
    assert _regressions(result, "error_rate.injected")  # per category too


def test_no_baseline() -> None:
    result = analyse(_run(11), None, TH)
    assert result.verdict is Verdict.NO_BASELINE
    assert all(f.baseline is None or f.metric.startswith("drift.") for f in result.findings)


def test_inconclusive_with_too_few_windows() -> None:
    profile = Profile(duration_s=300.0, warmup_s=60.0)  # 24 steady windows
    strict = ThresholdSettings(min_windows=30)
    result = analyse(_run(12, profile), _run(13, profile), strict)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "24 usable steady windows (need 30)" in result.reason
    latency = [f for f in result.findings if f.metric == "latency_p99"]
    assert latency
    assert all(f.verdict is FindingVerdict.INCONCLUSIVE for f in latency)
    assert "not enough data" in latency[0].detail


def test_saturated_candidate_is_inconclusive_never_regression() -> None:
    candidate = saturate(scale_latency(_run(14), 1.5), 0.3, seed=1)
    result = analyse(candidate, _run(15), TH)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert result.saturated
    assert re.search(r"saturated in (29|30|31)% of steady windows", result.reason)


def test_saturated_baseline_makes_comparisons_inconclusive() -> None:
    result = analyse(_run(16), saturate(_run(17), 0.5, seed=2), TH)
    assert result.verdict is Verdict.INCONCLUSIVE
    compared = [f for f in result.findings if f.metric == "latency_p50"]
    assert compared
    assert all(f.verdict is FindingVerdict.INCONCLUSIVE for f in compared)


def test_crash_is_a_regression() -> None:
    crashed = replace(_run(18), crash="exit code -9 at 612 s")
    result = analyse(crashed, _run(19), TH)
    assert result.verdict is Verdict.REGRESSION
    assert result.reason == "gateway crashed: exit code -9 at 612 s"
    assert _regressions(result, "crash")


def test_empty_run() -> None:
    result = analyse(RunData.empty(), None, TH)
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "only 0 usable steady windows" in result.reason
    crashed = analyse(RunData.empty(crash="never became ready"), _run(20), TH)
    assert crashed.verdict is Verdict.REGRESSION


def test_error_ceiling_without_baseline() -> None:
    result = analyse(add_errors(_run(21), 0.03, seed=3), None, TH)
    assert result.verdict is Verdict.REGRESSION
    [overall] = [f for f in _regressions(result, "error_ceiling") if f.name == "*"]
    assert overall.candidate == pytest.approx(3.1, abs=0.4)
    assert overall.threshold == 1.0


def test_error_spike_found_at_its_onset_without_baseline() -> None:
    onset = 0.6 * HOUR.duration_s
    spiked = add_errors(_run(22, HOUR), 0.02, from_s=onset, until_s=onset + 300, seed=4)
    result = analyse(spiked, None, TH)
    assert result.verdict is Verdict.REGRESSION
    [change] = [f for f in _regressions(result, "change.error_rate") if f.name == "*"]
    assert change.at_s is not None
    assert abs(change.at_s - onset) <= 2 * HOUR.window_s
    assert change.detail.startswith("errors rose from 0.")
    assert change.detail.endswith("at 36 min")
    assert any(p.after < p.before for p in result.change_points)  # and it ended


def test_memory_leak_without_baseline() -> None:
    result = analyse(add_leak(_run(23, HOUR), 20.0), None, TH)
    assert result.verdict is Verdict.REGRESSION
    [leak] = _regressions(result, "memory_leak")
    assert leak.candidate == pytest.approx(20.0, abs=5.0)
    assert leak.ci_low is not None
    assert leak.ci_low > 10.0


def test_memory_leak_against_baseline() -> None:
    result = analyse(add_leak(_run(24, HOUR), 20.0), _run(25, HOUR), TH)
    [slope] = _regressions(result, "memory_slope")
    assert slope.delta == pytest.approx(20.0, abs=5.0)
    assert slope.unit == "MB/h"


def test_drift_without_baseline() -> None:
    run = _run(26, HOUR)
    late = run.warmup_s + 0.75 * (run.duration_s - run.warmup_s)
    result = analyse(scale_latency(run, 1.4, names=["chat"], from_s=late), None, TH)
    assert result.verdict is Verdict.REGRESSION
    assert [f.name for f in _regressions(result, "drift.latency_p99")] == ["chat"]


def test_open_model_compares_late_sends_not_throughput() -> None:
    profile = replace(SHORT, open_model=True)
    result = analyse(_run(27, profile), _run(28, profile), TH)
    metrics = {f.metric for f in result.findings}
    assert "late_rate" in metrics
    assert "throughput" not in metrics


def test_streaming_and_overhead_metrics_are_compared() -> None:
    result = analyse(_run(29), _run(30), TH)
    pairs = {(f.metric, f.name) for f in result.findings}
    assert ("ttft_p99", "chat_stream") in pairs
    assert ("inter_chunk_p99", "chat_stream") in pairs
    assert ("ttft_p99", "chat") not in pairs
    assert ("overhead_p50", "embeddings") in pairs
    assert ("cpu", "*") in pairs
    assert ("memory_level", "*") in pairs


def test_fault_phase_recovery_and_impact() -> None:
    phase = FaultPhase("provider_slow", 600.0, 120.0)
    profile = replace(Profile(duration_s=1800.0, warmup_s=120.0), phases=(phase,))
    columns = ("p50", "p90", "p95", "p99", "p999", "max")
    base = scale_latency(_run(31, profile), 2.0, columns=columns, from_s=600, until_s=720)
    slow = scale_latency(_run(32, profile), 2.0, columns=columns, from_s=600, until_s=960)
    result = analyse(slow, base, TH)
    [recovery] = [f for f in result.findings if f.metric == "phase.provider_slow.recovery"]
    assert recovery.verdict is FindingVerdict.REGRESSION
    assert recovery.candidate == pytest.approx(240.0, abs=30.0)
    assert recovery.baseline is not None
    assert recovery.baseline <= 30.0
    impact = [f for f in result.findings if f.metric == "phase.provider_slow.impact.latency_p99"]
    assert impact
    assert all(f.delta is not None and f.delta > 0.5 for f in impact)
    same = [f for f in result.findings if f.metric == "phase.provider_slow.latency_p99"]
    assert same
    assert all(f.verdict is not FindingVerdict.REGRESSION for f in same)
    # the same fault in both runs, recovered alike: impact alone never fails a run
    assert analyse(base, base, TH).verdict is Verdict.PASS


def test_missing_column_is_a_clear_error() -> None:
    run = _run(33)
    broken = run.with_frames(windows=run.windows.drop(columns=["p99"]))
    with pytest.raises(InputError, match=r"windows lacks column\(s\) p99; expected: series"):
        analyse(broken, None, TH)


def test_same_input_same_answer() -> None:
    first, second = analyse(_run(34), _run(35), TH), analyse(_run(34), _run(35), TH)
    assert first == second
