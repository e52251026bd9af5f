"""Runs measured side by side are compared window by window.

The host's speed moves under a run (a VM's neighbours, frequency scaling): here both runs
of a pair slow down by 40 % for six minutes in the middle of the run, at the same moments,
as two gateways on one host do. Compared window by window, that common slowdown cancels;
compared as two separate runs, it only widens the intervals.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy import stats

from observatory.analysis.bootstrap import Sample, delta_interval, paired
from observatory.analysis.comparison import rank_p_value
from observatory.analysis.injection import scale_latency
from observatory.analysis.rundata import RunData
from observatory.analysis.synthetic import Profile, ar1, synthetic_run
from observatory.analysis.verdict import analyse
from observatory.domain import FindingVerdict, Verdict
from observatory.settings import ThresholdSettings

PROFILE = Profile(duration_s=1200.0, warmup_s=120.0, window_s=10.0)
START = 1_790_000_000.0  # the shared wall-clock start of a side-by-side pair
ALL_PERCENTILES = ("p50", "p90", "p95", "p99", "p999", "max")


def _slowed(run: RunData) -> RunData:
    """The host at 1.4x from minute 8 to 14 (every latency percentile)."""
    return scale_latency(run, 1.4, columns=ALL_PERCENTILES, from_s=480.0, until_s=840.0)


def _pair(p99: float, *, together: bool) -> tuple[RunData, RunData]:
    base = _slowed(synthetic_run(PROFILE, seed=11))
    cand = _slowed(synthetic_run(PROFILE, seed=12))
    if p99 != 1.0:
        cand = scale_latency(cand, p99)
    start = START if together else None
    return replace(base, started_at=start), replace(cand, started_at=start)


def _latency_p99(candidate: RunData, baseline: RunData) -> dict[str, FindingVerdict]:
    """Verdicts of the p99 findings of the two busy names (embeddings is too sparse)."""
    result = analyse(candidate, baseline, ThresholdSettings())
    return {
        f.name: f.verdict
        for f in result.findings
        if f.metric == "latency_p99" and f.name in ("chat", "chat_stream")
    }


def test_a_p99_slip_is_found_side_by_side_despite_a_common_slowdown() -> None:
    base, cand = _pair(1.10, together=True)
    assert cand.measured_with(base)
    verdicts = _latency_p99(cand, base)
    assert set(verdicts.values()) == {FindingVerdict.REGRESSION}, verdicts
    assert analyse(cand, base, ThresholdSettings()).verdict is Verdict.REGRESSION


def test_the_same_slip_in_separately_timed_runs_is_not_called() -> None:
    base, cand = _pair(1.10, together=False)
    assert not cand.measured_with(base)
    verdicts = _latency_p99(cand, base)
    assert len(verdicts) == 2
    assert FindingVerdict.REGRESSION not in verdicts.values()


def test_a_common_slowdown_alone_passes_side_by_side() -> None:
    base, cand = _pair(1.0, together=True)
    result = analyse(cand, base, ThresholdSettings())
    assert result.verdict is not Verdict.REGRESSION, result.reason
    latency = [f for f in result.findings if f.metric.startswith("latency_")]
    assert {f.verdict for f in latency} == {FindingVerdict.UNCHANGED}
    assert all("side by side" in f.detail for f in latency)
    # Each run alone shows the slowdown as a p99 change point; the candidate's is the host's.
    rises = [f for f in result.findings if f.metric == "change.latency_p99"]
    assert rises
    assert all(f.verdict is FindingVerdict.INCONCLUSIVE for f in rises)
    assert all("the host, not the build" in f.detail for f in rises)


def test_paired_interval_is_narrower_when_both_runs_share_the_drift() -> None:
    rng = np.random.default_rng(3)
    t = START + np.arange(200) * 10.0
    drift = ar1(rng, 200, 0.3, 0.95)  # the host, shared
    base_logs = drift + rng.normal(0, 0.05, 200)
    cand_logs = drift + np.log(1.1) + rng.normal(0, 0.05, 200)
    ones = np.ones(200)
    together = (Sample(base_logs, ones, log=True, t=t), Sample(cand_logs, ones, log=True, t=t))
    apart = (Sample(base_logs, ones, log=True), Sample(cand_logs, ones, log=True))
    narrow = delta_interval(*together, np.random.default_rng(0), relative=True)
    wide = delta_interval(*apart, np.random.default_rng(0), relative=True)
    assert 0.05 < narrow.low < 0.10 < narrow.high < 0.15
    assert wide.high - wide.low > 5 * (narrow.high - narrow.low)
    assert rank_p_value(*together) < 1e-6 < 0.05 < rank_p_value(*apart)


def test_pairing_needs_common_windows() -> None:
    ones = np.ones(20)
    t = START + np.arange(20) * 10.0
    base = Sample(np.zeros(20), ones, t=t)
    assert paired(base, Sample(np.zeros(20), ones, t=t + 5.0)) is None  # other grid
    assert paired(base, Sample(np.zeros(20), ones)) is None  # no clock
    half = paired(base, Sample(np.zeros(12), ones[:12], t=t[8:]))
    assert half is not None
    assert half[0].n == half[1].n == 12
    assert np.array_equal(half[0].t, half[1].t)  # type: ignore[arg-type]


def test_side_by_side_a_a_false_positive_bound() -> None:
    # 50 independent A/A pairs of one-hour runs, both slowed by the host at once. Target:
    # at most 1 % flagged; if the true rate were 1 %, more than 3 of 50 would happen with
    # probability P(X > 3) = 0.18 %.
    bound = 3
    assert stats.binom.sf(bound, 50, 0.01) < 0.005
    hour = Profile()
    flagged = []
    for seed in range(50):
        base = _slowed(synthetic_run(hour, seed=20_000 + 2 * seed))
        cand = _slowed(synthetic_run(hour, seed=20_001 + 2 * seed))
        together = replace(cand, started_at=START), replace(base, started_at=START)
        if analyse(*together, ThresholdSettings()).verdict is Verdict.REGRESSION:
            flagged.append(seed)
    assert len(flagged) <= bound, f"A/A pairs flagged: {flagged}"
