"""HDR histograms of durations: microseconds, 3 significant digits, 1 us .. 1 hour.

A thin wrapper over the ``hdrhistogram`` package so the rest of the load package speaks
milliseconds and never touches the library's units, ranges or encoding. Merging is exact
(bucket counts add), which is what lets windows from many Locust processes combine into
one distribution instead of averaging percentiles.

Two hot paths use numpy over the library's own counts array, with the library's own index
formula, because the pure-Python per-value path costs about a microsecond per sample and
a percentile query walks the 23,552 buckets one Python call at a time:
``record_many_ms`` bins a batch of samples at once (then records one value per distinct
bucket through the public API), and ``percentiles_ms`` uses a cumulative sum. Both give
bucket counts and percentiles identical to the per-value path (tests check it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from hdrh.histogram import HdrHistogram

from observatory.errors import LoadError

LOWEST_US: Final = 1
HIGHEST_US: Final = 3_600_000_000  # one hour; longer values are clamped and counted
SIGNIFICANT_DIGITS: Final = 3
PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0, 99.9)


class Histogram:
    """Durations in one HDR histogram; values above one hour are clamped and counted."""

    __slots__ = ("_hdr", "clamped")

    def __init__(self, hdr: HdrHistogram | None = None) -> None:
        self._hdr = (
            hdr if hdr is not None else HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        )
        self.clamped = 0

    @property
    def count(self) -> int:
        return int(self._hdr.get_total_count())

    def record_ms(self, value_ms: float, count: int = 1) -> None:
        """Record a duration in milliseconds (negative values count as zero)."""
        self.record_us(round(value_ms * 1000.0), count)

    def record_us(self, value_us: int, count: int = 1) -> None:
        if value_us > HIGHEST_US:
            # Clamping keeps the sample in the count (a 2-hour hang is still a hang).
            self.clamped += count
            value_us = HIGHEST_US
        self._hdr.record_value(max(value_us, 0), count)

    def record_many_ms(self, values_ms: Sequence[float]) -> None:
        """Record a batch of durations in ms; same result as ``record_ms`` on each."""
        if not values_ms:
            return
        micros = np.rint(np.asarray(values_ms, dtype=np.float64) * 1000.0)
        np.clip(micros, 0, None, out=micros)
        over = micros > HIGHEST_US
        if over.any():
            self.clamped += int(over.sum())
            micros[over] = HIGHEST_US
        indexes, counts = np.unique(self._indexes(micros.astype(np.int64)), return_counts=True)
        hdr = self._hdr
        for index, count in zip(indexes.tolist(), counts.tolist(), strict=True):
            hdr.record_value(hdr.get_value_from_index(index), count)

    def _indexes(self, micros: np.ndarray) -> np.ndarray:
        """The library's counts index of each value (its _counts_index_for, vectorised)."""
        hdr = self._hdr
        # bit length of (v | mask), exact through frexp for values below 2**53
        _, bits = np.frexp((micros | hdr.sub_bucket_mask).astype(np.float64))
        bucket = bits - hdr.unit_magnitude - (hdr.sub_bucket_half_count_magnitude + 1)
        sub_bucket = micros >> (bucket + hdr.unit_magnitude)
        base = (bucket + 1) << hdr.sub_bucket_half_count_magnitude
        return np.asarray(base + (sub_bucket - hdr.sub_bucket_half_count))

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s counts to this histogram (exact: bucket counts add)."""
        if other.count:
            self._hdr.add(other._hdr)
        self.clamped += other.clamped

    def encode(self) -> str:
        """The library's encoding: base64 of the zlib-compressed V2 payload."""
        return str(self._hdr.encode().decode("ascii"))

    @classmethod
    def decode(cls, encoded: str, clamped: int = 0) -> Histogram:
        """The histogram ``encode`` produced; raise LoadError on a corrupt payload."""
        try:
            hdr = HdrHistogram.decode(encoded.encode("ascii"))
        except Exception as exc:  # hdrh raises zlib, base64 and its own cookie/length errors
            raise LoadError(f"corrupt HDR histogram ({len(encoded)} chars): {exc}") from None
        histogram = cls(hdr)
        histogram.clamped = clamped
        return histogram

    def percentiles_ms(self) -> dict[float, float]:
        """p50, p90, p95, p99, p99.9 in ms (0.0 when empty), HDR's highest-equivalent value."""
        cumulative = np.cumsum(np.ctypeslib.as_array(self._hdr.counts))
        return {p: self._at(cumulative, p) for p in PERCENTILES}

    def percentile_ms(self, percentile: float) -> float:
        return self._at(np.cumsum(np.ctypeslib.as_array(self._hdr.counts)), percentile)

    def _at(self, cumulative: np.ndarray, percentile: float) -> float:
        """HDR's definition: the bucket holding rank round(p * n), its highest value."""
        total = self.count
        if not total:
            return 0.0
        hdr = self._hdr
        rank = max(int(min(percentile, 100.0) * total / 100 + 0.5), 1)
        value = hdr.get_value_from_index(int(np.searchsorted(cumulative, rank)))
        if percentile:
            return float(hdr.get_highest_equivalent_value(value)) / 1000.0
        return float(hdr.get_lowest_equivalent_value(value)) / 1000.0

    def max_ms(self) -> float:
        return float(self._hdr.get_max_value()) / 1000.0 if self.count else 0.0

    def counts(self) -> list[int]:
        """The raw bucket counts (for exact equality checks)."""
        return [int(c) for c in np.ctypeslib.as_array(self._hdr.counts)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.clamped == other.clamped and self.counts() == other.counts()

    __hash__ = None  # type: ignore[assignment]  # mutable
