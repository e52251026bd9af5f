"""HDR histograms of durations: microseconds, 3 significant digits, 1 us .. 1 hour.

A thin wrapper over the ``hdrhistogram`` package so the rest of the load package speaks
milliseconds and never touches the library's units, ranges or encoding. Merging is exact
(bucket counts add), which is what lets windows from many Locust processes combine into
one distribution instead of averaging percentiles.

Two hot paths use numpy over the library's own counts array, with the library's own index
formula, because the pure-Python per-value path costs about a microsecond per sample and
a percentile query walks the 23,552 buckets one Python call at a time:
``record_many_ms`` bins a batch of samples at once and adds them to the counts array,
giving bucket counts, totals, minimum and maximum identical to the per-value path (tests
check it), and ``percentiles_ms`` uses a cumulative sum.
"""

from __future__ import annotations

import base64
import binascii
import gc
import math
import struct
import zlib
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
        view = np.ctypeslib.as_array(self._hdr.counts)
        added = np.bincount(self._indexes(micros.astype(np.int64)), minlength=view.size)
        view += added.astype(np.uint64)
        self._track(view)

    def _track(self, view: np.ndarray) -> None:
        """Update the library's total, min and max after writing to its counts directly."""
        nonzero = np.flatnonzero(view)
        if nonzero.size:
            self._hdr.set_internal_tacking_values(
                int(nonzero[0]), int(nonzero[-1]), int(view.sum())
            )

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
        histogram = cls()
        histogram.merge_encoded(encoded, clamped)
        return histogram

    def merge_encoded(self, encoded: str, clamped: int = 0) -> None:
        """Add an encoded histogram's counts, without building a library object for it.

        The library's own decoder leaks about 18 KB per call (in its C extension), which a
        master merging worker deltas for 24 hours cannot afford; this reads the same V2
        format (see codec): base64, an 8-byte header, zlib, a 40-byte payload header, then
        ZigZag LEB128 varints where a negative value is a run of empty buckets.
        """
        indexes, counts = _decode_counts(encoded, self._hdr)
        if counts:
            view = np.ctypeslib.as_array(self._hdr.counts)
            view[indexes] += np.asarray(counts, dtype=np.uint64)  # indexes are distinct
            self._track(view)
        self.clamped += clamped

    def percentiles_ms(self) -> dict[float, float]:
        """p50, p90, p95, p99, p99.9 in ms (0.0 when empty); see ``_at``."""
        cumulative = np.cumsum(np.ctypeslib.as_array(self._hdr.counts))
        return {p: self._at(cumulative, p, self.count) for p in PERCENTILES}

    def percentile_ms(self, percentile: float) -> float:
        cumulative = np.cumsum(np.ctypeslib.as_array(self._hdr.counts))
        return self._at(cumulative, percentile, self.count)

    def _at(self, cumulative: np.ndarray, percentile: float, total: int) -> float:
        """Nearest rank: the bucket holding rank ceil(p * n), reported at its highest value.

        The hdrh library rounds the rank instead (round(p * n)), which in a sparse tail
        can land one sample lower than the exact percentile; ceil is the textbook
        definition, so the only difference from the exact value is the 3-digit bucket.
        """
        if not total:
            return 0.0
        hdr = self._hdr
        # round() first: 0.99 * 2600 is 2573.9999999999995 in binary floating point
        rank = max(math.ceil(round(min(percentile, 100.0) * total / 100, 9)), 1)
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


def percentile_of(histograms: Sequence[Histogram], percentile: float) -> float:
    """The percentile (ms) of several histograms together, without merging them."""
    if not histograms:
        return 0.0
    total = np.sum([np.ctypeslib.as_array(h._hdr.counts) for h in histograms], axis=0)
    return histograms[0]._at(np.cumsum(total), percentile, int(total.sum()))


def collect_cycles() -> None:
    """Free the histograms just encoded or merged now, rather than at some later GC.

    A library histogram holds a reference cycle (histogram <-> encoder) around ~190 KB
    of counters, so it is freed only by the cycle collector, which a process allocating
    few objects runs rarely: a load generator's RSS would creep up by megabytes between
    collections. Locust freezes its start-up objects (gc.freeze) before forking, so a full
    collection there walks only the run's own objects and takes well under a millisecond.
    """
    gc.collect()


_EXTERNAL_COOKIE = 0x1C849304  # V2 compressed histogram (low nibble: word size)
_PAYLOAD_COOKIE = 0x1C849303  # V2 payload
_PAYLOAD_HEADER = struct.Struct(">IIIIqqd")


def _decode_counts(encoded: str, like: HdrHistogram) -> tuple[list[int], list[int]]:
    """(indexes, counts) of the non-empty buckets of an encoded histogram made with
    ``like``'s settings."""
    try:
        raw = base64.b64decode(encoded, validate=True)
        cookie, length = struct.unpack_from(">II", raw)
        if cookie & ~0xF0 != _EXTERNAL_COOKIE or length != len(raw) - 8:
            raise ValueError(f"bad header (cookie {cookie:#x}, length {length})")
        payload = zlib.decompress(raw[8:])
        cookie, size, offset, digits, low, high, _ = _PAYLOAD_HEADER.unpack_from(payload)
        if cookie & ~0xF0 != _PAYLOAD_COOKIE or offset != 0:
            raise ValueError(f"bad payload header (cookie {cookie:#x}, offset {offset})")
        if (digits, low, high) != (like.significant_figures, like.lowest_trackable_value,
                                   like.highest_trackable_value):  # fmt: skip
            raise ValueError(f"other settings: {digits} digits, range {low}..{high}")
        indexes, counts = _varint_counts(payload[_PAYLOAD_HEADER.size :][:size])
    except (ValueError, TypeError, IndexError, struct.error, zlib.error, binascii.Error) as exc:
        raise LoadError(f"corrupt HDR histogram ({len(encoded)} chars): {exc}") from None
    if indexes and indexes[-1] >= like.counts_len:
        raise LoadError(f"corrupt HDR histogram: bucket {indexes[-1]} >= {like.counts_len}")
    return indexes, counts


def _varint_counts(data: bytes) -> tuple[list[int], list[int]]:
    """(indexes, counts) of the non-empty buckets in ZigZag LEB128-64b9B varints (up to
    8 bytes of 7 bits and a 9th of 8); a negative value is a run of empty buckets."""
    indexes: list[int] = []
    counts: list[int] = []
    position = i = 0
    end = len(data)
    while i < end:
        byte = data[i]
        i += 1
        value, shift = byte & 0x7F, 7
        while byte & 0x80:
            byte = data[i]
            i += 1
            if shift == 56:
                value |= byte << 56
                break
            value |= (byte & 0x7F) << shift
            shift += 7
        count = (value >> 1) ^ -(value & 1)
        if count < 0:
            position -= count
        else:
            if count:
                indexes.append(position)
                counts.append(count)
            position += 1
    return indexes, counts
