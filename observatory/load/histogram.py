"""HDR histograms of durations: microseconds, 3 significant digits, 1 us .. 1 hour.

A thin wrapper over the ``hdrhistogram`` package so the rest of the load package speaks
milliseconds and never touches the library's units, ranges or encoding. Merging is exact
(bucket counts add), which is what lets windows from many Locust processes combine into
one distribution instead of averaging percentiles.
"""

from __future__ import annotations

from typing import Final

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
        if not self.count:
            return dict.fromkeys(PERCENTILES, 0.0)
        values = self._hdr.get_percentile_to_value_dict(list(PERCENTILES))
        return {p: values[p] / 1000.0 for p in PERCENTILES}

    def percentile_ms(self, percentile: float) -> float:
        return float(self._hdr.get_value_at_percentile(percentile)) / 1000.0 if self.count else 0.0

    def max_ms(self) -> float:
        return float(self._hdr.get_max_value()) / 1000.0 if self.count else 0.0

    def counts(self) -> list[int]:
        """The raw bucket counts (for exact equality checks)."""
        return [int(self._hdr.get_count_at_index(i)) for i in range(self._hdr.counts_len)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Histogram):
            return NotImplemented
        return self.clamped == other.clamped and self.counts() == other.counts()

    __hash__ = None  # type: ignore[assignment]  # mutable
