"""The decision rule for one finding, on constructed evidence."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from observatory.analysis.bootstrap import Sample
from observatory.analysis.comparison import Evidence, compare, finalise, rank_p_value, verdict_of
from observatory.analysis.synthetic import ar1
from observatory.analysis.thresholds import resolve
from observatory.domain import FindingVerdict
from observatory.settings import ThresholdSettings

LIMITS = resolve(ThresholdSettings())  # latency_p99: +6 % and +2 ms; fdr 0.05

P99 = Evidence(
    metric="latency_p99",
    name="chat",
    key="latency_p99",
    unit="ms",
    baseline=200.0,
    candidate=230.0,
    relative=0.15,
    absolute=30.0,
    ci_low=0.10,
    ci_high=0.20,
    p_value=0.001,
    enough=True,
)


@pytest.mark.parametrize(
    ("change", "q", "expected"),
    [
        ({}, 0.001, FindingVerdict.REGRESSION),
        (
            {"relative": -0.15, "absolute": -30.0, "ci_low": -0.2, "ci_high": -0.1},
            0.001,
            FindingVerdict.IMPROVEMENT,
        ),
        (
            {"relative": 0.02, "absolute": 4.0, "ci_low": 0.01, "ci_high": 0.03},
            0.001,
            FindingVerdict.UNCHANGED,
        ),  # significant but practically small
        ({}, 0.2, FindingVerdict.INCONCLUSIVE),  # big, but the rank test does not hold up
        ({"ci_low": 0.02}, 0.001, FindingVerdict.INCONCLUSIVE),  # interval reaches below 3 %
        ({"relative": 0.15, "absolute": 1.5}, 0.001, FindingVerdict.UNCHANGED),  # < 2 ms
        ({"enough": False}, math.nan, FindingVerdict.INCONCLUSIVE),
    ],
)
def test_decision_rule(change: dict, q: float, expected: FindingVerdict) -> None:
    assert verdict_of(replace(P99, **change), q, LIMITS) is expected


def test_strict_evidence_needs_the_whole_interval_beyond_the_threshold() -> None:
    strict = replace(P99, strict=True, ci_low=0.05)
    assert verdict_of(strict, 0.001, LIMITS) is FindingVerdict.INCONCLUSIVE
    assert verdict_of(replace(strict, ci_low=0.07), 0.001, LIMITS) is FindingVerdict.REGRESSION


def test_throughput_falling_is_the_regression() -> None:
    fewer = replace(
        P99,
        metric="throughput",
        key="throughput",
        relative=-0.2,
        absolute=-4.0,
        ci_low=-0.25,
        ci_high=-0.15,
    )
    assert verdict_of(fewer, 0.001, LIMITS) is FindingVerdict.REGRESSION


def test_finalise_adjusts_across_the_family_and_sorts() -> None:
    quiet = replace(P99, name="embeddings", relative=0.01, absolute=1.0, p_value=0.04)
    findings = finalise([quiet, P99], LIMITS)
    assert [f.name for f in findings] == ["chat", "embeddings"]
    assert findings[0].p_value == pytest.approx(0.002)  # 0.001 x 2 / 1
    assert findings[1].p_value == pytest.approx(0.04)
    assert findings[0].threshold == 0.06


def test_rank_test_accounts_for_autocorrelation() -> None:
    # Two halves of one AR(1) series with rho 0.9 differ by chance far more often than
    # independent windows would; the adjusted p-value must not call that certain.
    small = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        x, y = ar1(rng, 200, 1.0, 0.9), ar1(rng, 200, 1.0, 0.9)
        p = rank_p_value(Sample(x, np.ones(200)), Sample(y, np.ones(200)))
        small += p < 0.05
    assert small <= 12  # nominal 5; the unadjusted test flags 67 of these 100


def test_compare_rates_in_percentage_points() -> None:
    n = np.full(100, 1000.0)
    base = Sample(num=np.full(100, 1.0), den=n, scale=100.0)
    cand = Sample(num=np.full(100, 11.0), den=n, scale=100.0)
    evidence = compare("error_rate", "*", base, cand, key="error_rate", unit="%", min_windows=12)
    assert evidence.baseline == pytest.approx(0.1)
    assert evidence.candidate == pytest.approx(1.1)
    assert evidence.absolute == pytest.approx(0.01)  # threshold units (a fraction)
    assert evidence.shown_delta == pytest.approx(1.0)  # percentage points
