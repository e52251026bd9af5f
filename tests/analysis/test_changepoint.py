"""Change points: steps found where they are, quiet series left alone."""

from __future__ import annotations

import numpy as np
import pytest

from observatory.analysis.changepoint import (
    ChangePoint,
    change_points,
    error_signal,
    format_offset,
    log_signal,
)
from observatory.analysis.synthetic import ar1

WINDOW_S = 10.0


def _errors(rng: np.random.Generator, n: int, rates: np.ndarray) -> tuple[np.ndarray, ...]:
    t = np.arange(n) * WINDOW_S
    requests = rng.poisson(200, n).astype(float)
    failures = rng.binomial(requests.astype(int), rates).astype(float)
    return t, failures, requests


@pytest.mark.parametrize("hours", [1, 6])  # 6 h: the search runs on bins of 2 windows
def test_error_step_found_within_two_windows(hours: int) -> None:
    n = hours * 360
    onset = int(n * 0.61)
    found = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        rates = np.where(np.arange(n) >= onset, 0.05, 0.001)
        t, failures, requests = _errors(rng, n, rates)
        points = change_points(
            error_signal(t, failures, requests), "error_rate", "*", "%", WINDOW_S
        )
        rises = [p for p in points if p.after > p.before]
        assert len(rises) == 1, points
        found += abs(rises[0].at_s - onset * WINDOW_S) <= 2 * WINDOW_S
        assert rises[0].before == pytest.approx(0.1, abs=0.05)
        assert rises[0].after == pytest.approx(5.0, abs=0.5)
    assert found >= 19


def test_short_error_burst_has_two_change_points() -> None:
    rng = np.random.default_rng(7)
    n = 720
    idx = np.arange(n)
    rates = np.where((idx >= 400) & (idx < 430), 0.03, 0.001)
    t, failures, requests = _errors(rng, n, rates)
    points = change_points(error_signal(t, failures, requests), "error_rate", "*", "%", WINDOW_S)
    assert [round(p.at_s / WINDOW_S) for p in points] == pytest.approx([400, 430], abs=2)
    assert points[0].after > points[0].before
    assert points[1].after < points[1].before


def test_p99_step_on_autocorrelated_noise() -> None:
    rng = np.random.default_rng(3)
    n = 720
    noise = ar1(rng, n, 0.08, 0.5)
    p99 = 200.0 * np.exp(noise) * np.where(np.arange(n) >= 300, 1.3, 1.0)
    points = change_points(
        log_signal(np.arange(n) * WINDOW_S, p99), "latency_p99", "chat", "ms", WINDOW_S
    )
    assert len(points) == 1
    assert abs(points[0].at_s - 3000) <= 2 * WINDOW_S
    assert points[0].after / points[0].before == pytest.approx(1.3, abs=0.05)


def test_quiet_series_have_no_change_points() -> None:
    # Stationary but autocorrelated and bursty: at most one false alarm in 100 series.
    alarms = 0
    for seed in range(50):
        rng = np.random.default_rng(1000 + seed)
        n = 360
        burst = np.exp(ar1(rng, n, 0.3, 0.7) - 0.045)
        t, failures, requests = _errors(rng, n, 0.002 * burst)
        alarms += len(change_points(error_signal(t, failures, requests), "e", "*", "%", WINDOW_S))
        p99 = 150.0 * np.exp(ar1(rng, n, 0.1, 0.5))
        alarms += len(change_points(log_signal(t, p99), "p", "chat", "ms", WINDOW_S))
    assert alarms <= 1


def test_no_errors_at_all() -> None:
    t = np.arange(100) * WINDOW_S
    signal = error_signal(t, np.zeros(100), np.full(100, 50.0))
    assert change_points(signal, "error_rate", "*", "%", WINDOW_S) == []


def test_describe() -> None:
    point = ChangePoint("error_rate", "*", 3660.0, 0.0, 5.8, "%")
    assert point.describe() == "errors rose from 0 % to 5.8 % at 61 min"
    slower = ChangePoint("latency_p99", "chat", 90.0, 250.0, 120.0, "ms")
    assert slower.describe() == "p99 of chat fell from 250 ms to 120 ms at 90 s"


@pytest.mark.parametrize(("seconds", "text"), [(45, "45 s"), (3660, "61 min"), (7500, "2 h 5 min")])
def test_format_offset(seconds: float, text: str) -> None:
    assert format_offset(seconds) == text
