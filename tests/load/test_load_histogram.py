"""HDR histogram wrapper: units, clamping, encoding, and exact merging across processes."""

from __future__ import annotations

import math
import multiprocessing
import random

import pytest
from hdrh.histogram import HdrHistogram

from observatory.errors import LoadError
from observatory.load.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS, Histogram


def _samples(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(3.0, 1.0) for _ in range(n)]  # ms, long right tail


def _nearest_rank(values: list[float], percentile: float) -> float:
    """The exact percentile by nearest rank, HDR's definition (rank = ceil(p * n))."""
    ordered = sorted(values)
    rank = math.ceil(round(percentile / 100.0 * len(ordered), 9))
    return ordered[max(rank, 1) - 1]


def _record_and_encode(args: tuple[int, int]) -> str:
    """Runs in a separate OS process: record samples, ship the encoding."""
    seed, n = args
    histogram = Histogram()
    for value in _samples(seed, n):
        histogram.record_ms(value)
    return histogram.encode()


def test_percentiles_are_in_ms_within_three_significant_digits() -> None:
    values = _samples(1, 20_000)
    histogram = Histogram()
    for value in values:
        histogram.record_ms(value)
    assert histogram.count == len(values)
    pct = histogram.percentiles_ms()
    for p in (50.0, 90.0, 99.0, 99.9):
        truth = _nearest_rank(values, p)
        # HDR reports the highest value equivalent to the bucket: within 0.1 % + 1 us.
        assert abs(pct[p] - truth) <= truth * 0.001 + 0.002, (p, pct[p], truth)
    assert histogram.max_ms() == pytest.approx(max(values), rel=1e-3)


def test_values_above_one_hour_are_clamped_and_counted() -> None:
    histogram = Histogram()
    histogram.record_ms(5.0)
    histogram.record_ms(2 * 3600 * 1000.0)
    assert histogram.count == 2
    assert histogram.clamped == 1
    assert histogram.max_ms() == pytest.approx(HIGHEST_US / 1000.0, rel=1e-3)


def test_negative_values_count_as_zero() -> None:
    histogram = Histogram()
    histogram.record_ms(-3.0)
    assert histogram.count == 1
    assert histogram.percentile_ms(50.0) == 0.0


def test_encode_decode_round_trip_keeps_every_bucket() -> None:
    histogram = Histogram()
    for value in _samples(2, 5_000):
        histogram.record_ms(value)
    histogram.record_ms(10 * 3600 * 1000.0)
    decoded = Histogram.decode(histogram.encode(), histogram.clamped)
    assert decoded == histogram
    assert decoded.percentiles_ms() == histogram.percentiles_ms()


def test_empty_histogram_reports_zeros() -> None:
    histogram = Histogram()
    assert histogram.count == 0
    assert set(histogram.percentiles_ms().values()) == {0.0}
    assert Histogram.decode(histogram.encode()) == histogram


def test_corrupt_payload_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="corrupt HDR histogram"):
        Histogram.decode("bm90IGEgaGlzdG9ncmFt")


def test_merge_of_two_processes_equals_one_histogram_of_all_samples() -> None:
    jobs = [(11, 30_000), (12, 20_000)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        encoded = pool.map(_record_and_encode, jobs)
    merged = Histogram()
    for payload in encoded:
        merged.merge(Histogram.decode(payload))
    everything = Histogram()
    for seed, n in jobs:
        for value in _samples(seed, n):
            everything.record_ms(value)
    assert merged.count == 50_000
    assert merged == everything  # every bucket count, not only the percentiles
    assert merged.percentiles_ms() == everything.percentiles_ms()
    assert merged.max_ms() == everything.max_ms()


def test_merge_adds_clamped_counts() -> None:
    a, b = Histogram(), Histogram()
    a.record_ms(1e10)
    b.record_ms(1e10)
    b.record_ms(1.0)
    a.merge(b)
    assert (a.count, a.clamped) == (3, 2)


def test_batch_recording_equals_recording_one_by_one() -> None:
    values = [*_samples(21, 50_000), 0.0, -2.0, 0.0004, 0.0005, 2.047, 2.048, 4.096, 9e9, 3.6e6]
    one_by_one, batch = Histogram(), Histogram()
    for value in values:
        one_by_one.record_ms(value)
    batch.record_many_ms(values)
    assert batch == one_by_one
    assert (batch.count, batch.clamped) == (len(values), 1)
    assert batch.max_ms() == one_by_one.max_ms()
    assert batch.percentiles_ms() == one_by_one.percentiles_ms()


def test_own_decoder_reads_the_library_encoding_exactly() -> None:
    # The library's decoder leaks memory per call; ours must read the same bytes the same.
    library = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for value in _samples(31, 20_000):
        library.record_value(round(value * 1000))
    library.record_value(HIGHEST_US)
    ours = Histogram.decode(library.encode().decode("ascii"))
    assert ours.count == library.get_total_count()
    assert ours.counts() == [library.get_count_at_index(i) for i in range(library.counts_len)]
    assert ours.max_ms() * 1000 == library.get_max_value()


def test_merging_encoded_deltas_accumulates() -> None:
    a, b = Histogram(), Histogram()
    a.record_many_ms(_samples(41, 1000))
    b.record_many_ms(_samples(42, 1000))
    merged = Histogram()
    merged.merge_encoded(a.encode())
    merged.merge_encoded(b.encode(), clamped=2)
    a.merge(b)
    assert merged.counts() == a.counts()
    assert merged.clamped == 2


def test_histogram_with_other_settings_is_refused() -> None:
    other = HdrHistogram(1, 60_000_000, 2)
    other.record_value(5)
    with pytest.raises(LoadError, match="other settings"):
        Histogram.decode(other.encode().decode("ascii"))
