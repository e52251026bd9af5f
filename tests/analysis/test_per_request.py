"""Log bytes and CPU per request: compared with the baseline, on constructed runs."""

from __future__ import annotations

import numpy as np

from observatory.analysis import analyse
from observatory.analysis.injection import busy_share
from observatory.analysis.metrics import view
from observatory.analysis.per_request import LOG_FLOOR_BYTES, cost_sample
from observatory.analysis.rundata import RunData
from observatory.analysis.synthetic import Profile, synthetic_run
from observatory.domain import FindingVerdict, Verdict
from observatory.settings import ThresholdSettings

PROFILE = Profile(duration_s=1200.0, warmup_s=120.0, window_s=10.0)


def logging(run: RunData, bytes_per_request: float, seed: int) -> RunData:
    """The run with its gateway writing about ``bytes_per_request`` per request it served."""
    rng = np.random.default_rng(seed)
    res = run.resources.copy()
    latency = run.windows[run.windows["series"] == "latency"]
    per_s = float(latency["count"].sum()) / run.duration_s
    gateway = res["role"] == "gateway"
    step = float(np.diff(res.loc[gateway, "t"].to_numpy()[:2])[0])
    written = bytes_per_request * per_s * step * rng.uniform(0.8, 1.2, int(gateway.sum()))
    res["log_bytes"] = np.nan
    res.loc[gateway, "log_bytes"] = written
    return run.with_frames(resources=res)


def findings(cand: RunData, base: RunData) -> dict[str, FindingVerdict]:
    result = analyse(cand, base, ThresholdSettings())
    return {f.metric: f.verdict for f in result.findings if f.name == "*"}


def test_log_volume_per_request_rising_a_hundredfold_is_a_regression() -> None:
    base = logging(synthetic_run(PROFILE, seed=1), 20.0, seed=1)
    cand = logging(synthetic_run(PROFILE, seed=2), 2000.0, seed=2)
    result = analyse(cand, base, ThresholdSettings())
    assert result.verdict == Verdict.REGRESSION
    (finding,) = [f for f in result.findings if f.metric == "log_bytes_per_request"]
    assert finding.verdict == FindingVerdict.REGRESSION
    assert finding.unit == "B"
    assert finding.candidate is not None
    assert 1600 < finding.candidate < 2400


def test_the_same_log_volume_is_unchanged_and_cpu_per_request_is_compared() -> None:
    base = logging(synthetic_run(PROFILE, seed=3), 200.0, seed=3)
    cand = logging(synthetic_run(PROFILE, seed=4), 200.0, seed=4)
    verdicts = findings(cand, base)
    assert verdicts["log_bytes_per_request"] == FindingVerdict.UNCHANGED
    assert verdicts["cpu_per_request"] in (FindingVerdict.UNCHANGED, FindingVerdict.INCONCLUSIVE)


def test_a_silent_baseline_still_gives_a_ratio() -> None:
    run = logging(synthetic_run(PROFILE, seed=5), 0.0, seed=5)
    sample = cost_sample(view(run), "log_bytes")
    assert sample.n > 50
    assert sample.statistic() == LOG_FLOOR_BYTES


def test_runs_without_log_counts_compare_cpu_only() -> None:
    verdicts = findings(synthetic_run(PROFILE, seed=6), synthetic_run(PROFILE, seed=7))
    assert "log_bytes_per_request" not in verdicts
    assert "cpu_per_request" in verdicts


def test_a_log_flood_on_a_busy_host_is_still_a_regression() -> None:
    """A busy neighbour slows a gateway; it cannot make it log more: log volume is judged on
    every steady window, while the speed-bound findings are not judged."""
    base = logging(synthetic_run(PROFILE, seed=8), 20.0, seed=8)
    cand = logging(synthetic_run(PROFILE, seed=9), 2000.0, seed=9)
    cand = busy_share(cand, 0.6, seed=9)
    result = analyse(cand, base, ThresholdSettings())
    assert result.verdict == Verdict.REGRESSION, result.reason
    verdicts = {f.metric: f.verdict for f in result.findings if f.name == "*"}
    assert verdicts["log_bytes_per_request"] == FindingVerdict.REGRESSION
    assert verdicts["cpu_per_request"] == FindingVerdict.INCONCLUSIVE
    assert "not judged" in result.reason
