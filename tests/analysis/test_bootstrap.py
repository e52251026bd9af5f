"""Block bootstrap: block-length rule, ratio statistics, interval coverage."""

from __future__ import annotations

import math

import numpy as np

from observatory.analysis.bootstrap import (
    Sample,
    block_length,
    delta_interval,
    lag1_autocorrelation,
    resample,
)
from observatory.analysis.synthetic import ar1


def _values(values: np.ndarray, log: bool = False) -> Sample:
    return Sample(num=values, den=np.ones_like(values), log=log)


def test_block_length_is_cube_root_for_independent_windows() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=1000)
    assert block_length(values) == 10  # ceil(1000 ** (1/3))


def test_block_length_grows_with_autocorrelation() -> None:
    rng = np.random.default_rng(0)
    values = ar1(rng, 1000, 1.0, 0.9)
    rho = lag1_autocorrelation(values)
    assert 0.85 < rho < 0.95
    assert block_length(values) >= math.ceil((1 + 0.85) / (1 - 0.85))


def test_block_length_of_tiny_samples() -> None:
    assert block_length(np.array([1.0])) == 1
    assert block_length(np.array([1.0, 2.0, 3.0, 4.0])) == 2


def test_ratio_statistic_is_pooled_not_averaged() -> None:
    sample = Sample(num=np.array([1.0, 0.0]), den=np.array([10.0, 990.0]), scale=100.0)
    assert sample.value() == 0.1  # 1 failure in 1,000 requests: 0.1 %, not the mean 5 %


def test_resample_is_centred_on_the_statistic() -> None:
    rng = np.random.default_rng(1)
    sample = _values(rng.normal(5.0, 1.0, 500))
    replicates = resample(sample, np.random.default_rng(2))
    assert replicates.shape == (2000,)
    assert abs(replicates.mean() - sample.statistic()) < 0.02
    # standard error of a mean of 500 independent values: 1 / sqrt(500) = 0.045
    assert 0.035 < replicates.std() < 0.055


def test_empty_sample_resamples_to_nan() -> None:
    replicates = resample(_values(np.array([])), np.random.default_rng(0))
    assert np.isnan(replicates).all()


def test_interval_covers_the_true_shift_in_most_seeds() -> None:
    # Autocorrelated windows (rho 0.6) and a true relative shift of +5 % in a
    # geometric mean: the 95 % interval should cover +5 % in about 95 % of seeds;
    # an interval that ignored the autocorrelation would cover it far less often.
    covered = 0
    seeds = 100
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        base = np.log(100.0) + ar1(rng, 300, 0.1, 0.6)
        cand = np.log(105.0) + ar1(rng, 300, 0.1, 0.6)
        interval = delta_interval(
            _values(base, log=True), _values(cand, log=True), rng, relative=True
        )
        covered += interval.low <= 0.05 <= interval.high
    assert covered >= 85, f"covered the truth in {covered}/{seeds} seeds"


def test_absolute_interval_in_display_units() -> None:
    rng = np.random.default_rng(3)
    base = Sample(
        num=rng.binomial(200, 0.01, 300).astype(float), den=np.full(300, 200.0), scale=100.0
    )
    cand = Sample(
        num=rng.binomial(200, 0.02, 300).astype(float), den=np.full(300, 200.0), scale=100.0
    )
    interval = delta_interval(base, cand, rng, relative=False)
    observed = cand.value() - base.value()  # percentage points, truth +1
    assert interval.low < observed < interval.high
    assert interval.low > 0.6
    assert interval.high < 1.4
