"""Benjamini-Hochberg on known p-values."""

from __future__ import annotations

import math

import pytest

from observatory.analysis.fdr import benjamini_hochberg


def test_known_adjustment() -> None:
    # sorted: .005 (x4/1 = .02), .01 (x4/2 = .02), .03 (x4/3 = .04), .04 (x4/4 = .04)
    adjusted = benjamini_hochberg([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.02, 0.04, 0.04, 0.02])


def test_monotone_step_up() -> None:
    # .04 x 2 / 1 = .08 but the larger p-value .045 x 2 / 2 = .045 caps it
    assert benjamini_hochberg([0.04, 0.045]) == pytest.approx([0.045, 0.045])


def test_nan_is_not_part_of_the_family() -> None:
    adjusted = benjamini_hochberg([0.01, math.nan, 0.02])
    assert adjusted[0] == pytest.approx(0.02)
    assert math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.02)


def test_empty_family() -> None:
    assert benjamini_hochberg([]) == []


def test_rejections_at_q() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216]
    rejected = [q <= 0.05 for q in benjamini_hochberg(p)]
    # classic worked example: only the two smallest survive at q = 0.05
    assert rejected == [True, True] + [False] * 8
