"""Merging window HDR histograms into whole-run percentiles."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from observatory.analysis.histogram import merged_percentiles
from observatory.errors import InputError


def _recorded(
    rng: np.random.Generator, n: int, highest: int = 3_600_000_000
) -> tuple[str, np.ndarray]:
    histogram = HdrHistogram(1, highest, 3)
    values = rng.lognormal(np.log(80_000), 0.4, n).astype(int)  # microseconds, ~80 ms
    for value in values:
        histogram.record_value(int(value))
    return histogram.encode().decode(), values / 1000.0


def _encoded(rng: np.random.Generator, n: int, highest: int = 3_600_000_000) -> str:
    return _recorded(rng, n, highest)[0]


def test_merge_equals_the_reference_merge() -> None:
    rng = np.random.default_rng(0)
    blobs = [_encoded(rng, 50 + i) for i in range(40)]
    reference = HdrHistogram(1, 3_600_000_000, 3)
    for blob in blobs:
        reference.decode_and_add(blob)
    merged = merged_percentiles([*blobs, ""])
    for key, q in (("p50", 50), ("p95", 95), ("p99", 99), ("p999", 99.9)):
        assert merged[key] == pytest.approx(reference.get_value_at_percentile(q) / 1000)


def test_merge_is_exact_against_all_values() -> None:
    rng = np.random.default_rng(1)
    recorded = [_recorded(rng, 200) for _ in range(10)]
    values = np.concatenate([v for _, v in recorded])
    merged = merged_percentiles([b for b, _ in recorded])
    # HDR with 3 significant digits: within 0.1 % of the exact percentile of all values
    for key, q in (("p50", 50), ("p99", 99)):
        assert merged[key] == pytest.approx(
            np.percentile(values, q, method="inverted_cdf"), rel=2e-3
        )


def test_histograms_with_different_ranges_still_merge() -> None:
    rng = np.random.default_rng(2)
    blobs = [_encoded(rng, 100), _encoded(rng, 100, highest=60_000_000)]
    merged = merged_percentiles(blobs)
    assert 50 < merged["p50"] < 120


def test_no_histograms() -> None:
    assert merged_percentiles(["", ""]) == {}


@pytest.mark.parametrize(
    "blob",
    [
        "not base64!",
        base64.b64encode(b"short").decode(),
        base64.b64encode(b"\x1c\x84\x93\x14\x00\x00\x00\x04abcd").decode(),
    ],
)
def test_garbage_is_a_clear_input_error(blob: str) -> None:
    with pytest.raises(InputError, match=r"window histogram #1"):
        merged_percentiles(["", blob])
