"""Memory level on every sample, and leaks judged on short runs: constructed series."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from observatory.analysis import analyse
from observatory.analysis.checks import leak_finding
from observatory.analysis.resources import level_evidence, level_sample, memory_slope
from observatory.analysis.rundata import RESOURCE_COLUMNS, RunData
from observatory.analysis.synthetic import Profile, ar1, synthetic_run
from observatory.analysis.thresholds import resolve
from observatory.domain import FindingVerdict, Verdict
from observatory.settings import ThresholdSettings

TH = ThresholdSettings()
DEMO = Profile(duration_s=180.0, warmup_s=30.0, window_s=5.0)  # the demo's 3-minute runs


def _memory(mb: np.ndarray, step_s: float = 5.0) -> pd.DataFrame:
    t = np.arange(mb.size) * step_s
    rows = pd.DataFrame({"t": t, "role": "gateway", "rss_mb": mb + 40.0, "uss_mb": mb})
    return rows.reindex(columns=list(RESOURCE_COLUMNS)).astype(RESOURCE_COLUMNS)


def _run(seed: int, mb: np.ndarray, *, started_at: float | None = None) -> RunData:
    """A synthetic 3-minute run whose gateway memory is ``mb`` (one sample per 5 s)."""
    run = synthetic_run(DEMO, seed=seed).with_frames(resources=_memory(mb))
    return replace(run, started_at=started_at)


def _memory_only(mb: np.ndarray) -> RunData:
    empty = RunData.empty(duration_s=DEMO.duration_s, warmup_s=30.0, window_s=5.0)
    return empty.with_frames(resources=_memory(mb))


def _wander(seed: int, level: float, sd: float = 3.0, rho: float = 0.9, n: int = 36) -> np.ndarray:
    return level + ar1(np.random.default_rng(seed), n, sd, rho)


def _finding(result, metric: str):  # type: ignore[no-untyped-def]
    (found,) = [f for f in result.findings if f.metric == metric]
    return found


def test_a_level_step_whose_samples_do_not_overlap_is_a_regression() -> None:
    """The demo: 275 -> 346 MB, every candidate sample above every baseline sample."""
    base, cand = _wander(1, 275.3), _wander(2, 346.2)
    assert cand[6:].min() > base[6:].max()
    result = analyse(_run(3, cand), _run(4, base), TH)
    level = _finding(result, "memory_level")
    assert level.verdict is FindingVerdict.REGRESSION
    assert level.delta == pytest.approx(0.258, abs=0.03)
    assert level.ci_low is not None
    assert level.ci_low > 0.2
    assert result.verdict is Verdict.REGRESSION
    assert result.reason.startswith("gateway memory level 34")
    assert "vs 27" in result.reason
    assert "interval +" in result.reason


def test_aa_level_noise_with_autocorrelation_is_unchanged_and_intervals_cover() -> None:
    """Same level, AR(1) wander (rho 0.5): the interval covers 0 near its 95 %."""
    covered = 0
    for seed in range(200):
        b = level_sample(_memory_only(_wander(2 * seed, 300.0, rho=0.5)), "uss_mb")
        c = level_sample(_memory_only(_wander(2 * seed + 1, 300.0, rho=0.5)), "uss_mb")
        evidence = level_evidence(b, c, min_windows=12)
        covered += evidence.ci_low <= 0.0 <= evidence.ci_high
    # an interval that ignored the autocorrelation covers about 75 % here
    assert covered >= 176, f"{covered}/200"


def test_level_verdicts_of_aa_pairs_stay_unchanged() -> None:
    flagged = 0
    for seed in range(10):
        result = analyse(
            _run(seed, _wander(100 + seed, 300.0)), _run(50 + seed, _wander(seed, 302.0)), TH
        )
        flagged += _finding(result, "memory_level").verdict is not FindingVerdict.UNCHANGED
    assert flagged == 0


def test_side_by_side_pairs_windows_and_cancels_a_shared_wander() -> None:
    """Both gateways follow one slow traffic-driven wander; +8 % shows once paired."""
    shared = ar1(np.random.default_rng(7), 36, 15.0, 0.95)
    base = 300.0 + shared + ar1(np.random.default_rng(8), 36, 0.5, 0.3)
    cand = 324.0 + shared + ar1(np.random.default_rng(9), 36, 0.5, 0.3)
    together = level_evidence(
        level_sample(_run(1, base, started_at=1e9), "uss_mb"),
        level_sample(_run(2, cand, started_at=1e9), "uss_mb"),
        min_windows=12,
    )
    apart = level_evidence(
        level_sample(_run(1, base), "uss_mb"), level_sample(_run(2, cand), "uss_mb"), 12
    )
    assert "side by side" in together.detail
    assert together.relative == pytest.approx(0.08, abs=0.01)
    assert (together.ci_high - together.ci_low) < (apart.ci_high - apart.ci_low) / 3
    assert together.ci_low > 0.06


def test_busy_neighbours_do_not_remove_memory_samples() -> None:
    """Windows set aside for neighbours keep their memory samples: memory is not speed-bound."""
    from observatory.analysis.injection import busy_neighbours

    run = _run(1, _wander(1, 300.0))
    busy = busy_neighbours(run, 1.5, from_s=30.0, until_s=180.0)
    assert level_sample(busy, "uss_mb").n == level_sample(run, "uss_mb").n == 30


def _short_leak(seed: int, mb_per_h: float, sd: float = 0.5, minutes: float = 4.0) -> np.ndarray:
    t = np.arange(0.0, minutes * 60, 5.0)
    return 300.0 + mb_per_h * t / 3600 + ar1(np.random.default_rng(seed), t.size, sd, 0.5)


def _slopes(base: np.ndarray, cand: np.ndarray, warmup_s: float = 40.0):  # type: ignore[no-untyped-def]
    t = np.arange(base.size) * 5.0
    keep = t >= warmup_s
    return memory_slope(t[keep], base[keep]), memory_slope(t[keep], cand[keep])


LIMITS = resolve(TH)


def test_288_mb_per_hour_over_four_minutes_is_a_leak() -> None:
    base, cand = _slopes(_short_leak(1, 0.0), _short_leak(2, 288.0))
    leak = leak_finding(cand, base, LIMITS)
    assert leak.verdict is FindingVerdict.REGRESSION
    assert leak.candidate == pytest.approx(288.0, rel=0.2)
    assert leak.detail.startswith("gateway memory grows 2")
    assert "vs " in leak.detail
    assert "limit +10 MB/h" in leak.detail


def test_start_up_growth_that_flattens_is_not_a_leak() -> None:
    t = np.arange(0.0, 240.0, 5.0)
    settling = 300.0 + 25.0 * (1 - np.exp(-(t - 40.0).clip(min=0) / 20.0))
    noise = ar1(np.random.default_rng(3), t.size, 0.3, 0.5)
    base, cand = _slopes(_short_leak(4, 0.0), settling + noise)
    assert cand.mb_per_h > 50.0  # a naive slope calls it a fast leak
    leak = leak_finding(cand, base, LIMITS)
    assert leak.verdict is FindingVerdict.UNCHANGED
    assert "flattens" in leak.detail


def test_a_wide_interval_is_not_judged_and_says_why() -> None:
    base, cand = _slopes(_short_leak(5, 0.0, sd=8.0), _short_leak(6, 100.0, sd=8.0))
    leak = leak_finding(cand, base, LIMITS)
    assert leak.verdict is FindingVerdict.INCONCLUSIVE
    assert leak.detail.startswith("not judged: gateway memory grows")
    assert "too wide" in leak.detail


def test_a_short_run_without_a_baseline_is_not_judged() -> None:
    _, cand = _slopes(_short_leak(1, 0.0), _short_leak(2, 288.0))
    leak = leak_finding(cand, None, LIMITS)
    assert leak.verdict is FindingVerdict.INCONCLUSIVE
    assert "needs 24 samples and a baseline" in leak.detail


def test_short_leak_through_analyse_makes_the_run_a_regression() -> None:
    result = analyse(
        _run(1, _short_leak(7, 288.0, minutes=3.0)), _run(2, _short_leak(8, 0.0, minutes=3.0)), TH
    )
    assert _finding(result, "memory_leak").verdict is FindingVerdict.REGRESSION
    assert result.verdict is Verdict.REGRESSION


def test_short_aa_pairs_with_start_up_growth_are_not_leaks() -> None:
    """Both runs still settle (60 MB ramp) under slow AR(0.8) wander: never a leak."""
    t = np.arange(0.0, 180.0, 5.0)
    ramp = 300.0 + 60.0 * (1 - np.exp(-t / 120.0))
    flagged = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        runs = [ramp + ar1(rng, t.size, 2.0, 0.8) for _ in range(2)]
        base, cand = _slopes(runs[0], runs[1], warmup_s=30.0)
        flagged += leak_finding(cand, base, LIMITS).verdict is FindingVerdict.REGRESSION
    assert flagged == 0
