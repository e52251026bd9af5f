"""Memory slope (Theil-Sen), peak and CPU on constructed series."""

from __future__ import annotations

import time

import numpy as np
import pytest

from observatory.analysis.resources import memory_slope, slope_evidence
from observatory.analysis.synthetic import ar1


def _memory(seed: int, mb_per_h: float, hours: float = 1.0, step_s: float = 5.0):
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, hours * 3600, step_s)
    sawtooth = ar1(rng, t.size, 2.0, 0.8)  # GC-like wobble, strongly autocorrelated
    return t, 400.0 + mb_per_h * t / 3600 + sawtooth


def test_known_slope_is_inside_its_interval_in_most_seeds() -> None:
    inside = 0
    for seed in range(100):
        slope = memory_slope(*_memory(seed, 15.0))
        assert slope.known
        assert slope.mb_per_h == pytest.approx(15.0, abs=4.0)
        inside += slope.low <= 15.0 <= slope.high
    # nominal 95 %: widening for autocorrelation keeps it near that despite rho 0.8
    assert inside >= 85, f"{inside}/100"


def test_interval_is_widened_for_autocorrelated_samples() -> None:
    t, mb = _memory(1, 0.0)
    slope = memory_slope(t, mb)
    rng = np.random.default_rng(1)
    independent = memory_slope(t, 400.0 + rng.normal(0.0, 2.0, t.size))
    assert (slope.high - slope.low) > 2 * (independent.high - independent.low)


def test_one_spike_does_not_move_theil_sen() -> None:
    t, mb = _memory(2, 10.0)
    spiked = mb.copy()
    spiked[len(mb) // 2 : len(mb) // 2 + 5] += 500.0  # a GC pause blows RSS up briefly
    assert memory_slope(t, spiked).mb_per_h == pytest.approx(memory_slope(t, mb).mb_per_h, abs=1)


def test_24_hours_are_binned_and_fast() -> None:
    t, mb = _memory(3, 5.0, hours=24.0)  # 17,280 samples
    started = time.perf_counter()
    slope = memory_slope(t, mb)
    elapsed = time.perf_counter() - started
    assert slope.points == t.size
    assert slope.mb_per_h == pytest.approx(5.0, abs=0.5)
    assert elapsed < 5.0  # generous: the unbinned pairwise slopes would need ~150 M pairs


def test_too_few_samples_are_unknown() -> None:
    slope = memory_slope(np.arange(5.0), np.arange(5.0))
    assert not slope.known


def test_slope_difference_evidence() -> None:
    base = memory_slope(*_memory(4, 0.0))
    cand = memory_slope(*_memory(5, 20.0))
    evidence = slope_evidence(base, cand)
    assert evidence.absolute == pytest.approx(20.0, abs=5.0)
    assert evidence.ci_low > 0
    assert evidence.p_value < 0.001
    assert evidence.enough
