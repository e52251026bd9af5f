"""Whole-run percentiles from the windows' HDR histograms (exact merge, no averaging).

Percentiles of windows cannot be averaged into a run's percentile; histograms can
be added. Values are recorded in microseconds and reported in milliseconds.

Merging with ``HdrHistogram.decode_and_add`` builds a Python histogram object per
window (about 250 us each: 2 s per request name of a 24-hour run). Here each
window's payload is decoded by the package's own C varint decoder straight into
one scratch array and summed with numpy (about 30 us), and a single histogram is
built from the sum at the end. The wire format is HdrHistogram's V2 compressed
encoding (base64 of an 8-byte header and a zlib payload with a 40-byte header).
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyhdrh  # type: ignore[import-not-found]  # C extension of hdrhistogram
from hdrh.codec import V2_COMPRESSION_COOKIE_BASE, V2_ENCODING_COOKIE_BASE, get_cookie_base
from hdrh.histogram import HdrHistogram

from observatory.errors import InputError

PERCENTILES: Mapping[str, float] = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p999": 99.9}
_EXTERNAL = struct.Struct(">II")  # cookie, compressed length
_PAYLOAD = struct.Struct(">IIIIQQd")  # cookie, varint length, offset, digits, low, high, ratio
_WORD_SIZE = 8


@dataclass
class _Sum:
    """Counts summed over windows that share one histogram layout."""

    layout: tuple[int, int, int]  # lowest, highest, significant digits
    counts_len: int
    total: np.ndarray = field(init=False)
    scratch: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.total = np.zeros(self.counts_len, dtype=np.int64)
        self.scratch = np.zeros(self.counts_len, dtype=np.int64)

    def add(self, payload: bytes) -> None:
        # The decoder writes only non-zero counters, so the scratch array is kept all
        # zero between calls by clearing exactly the range it wrote.
        found = pyhdrh.decode(
            payload, _PAYLOAD.size, self.scratch.ctypes.data, self.counts_len, _WORD_SIZE
        )
        if found["total"]:
            low, high = found["min_nonzero_index"], found["max_nonzero_index"] + 1
            self.total[low:high] += self.scratch[low:high]
            self.scratch[low:high] = 0


def _payload(index: int, blob: str) -> tuple[tuple[int, int, int], bytes]:
    try:
        raw = base64.b64decode(blob, validate=True)
        cookie, length = _EXTERNAL.unpack_from(raw)
        if get_cookie_base(cookie) != V2_COMPRESSION_COOKIE_BASE or length != len(raw) - 8:
            raise ValueError("bad header")
        payload = zlib.decompress(raw[_EXTERNAL.size :])
        fields = _PAYLOAD.unpack_from(payload)
    except (binascii.Error, struct.error, zlib.error, ValueError) as exc:
        raise InputError(
            f"window histogram #{index} is not an HDR histogram (V2 compressed, base64): {exc}"
        ) from None
    cookie, _, offset, digits, lowest, highest, _ = fields
    if get_cookie_base(cookie) != V2_ENCODING_COOKIE_BASE or offset != 0:
        raise InputError(f"window histogram #{index}: unsupported HDR encoding {cookie:#x}")
    return (lowest, highest, digits), payload


def merged_percentiles(encoded: Iterable[str]) -> dict[str, float]:
    """p50/p95/p99/p999 in ms of the sum of the given histograms; {} when none is present."""
    sums: dict[tuple[int, int, int], _Sum] = {}
    for index, blob in enumerate(encoded):
        if not blob:
            continue
        layout, payload = _payload(index, blob)
        if layout not in sums:
            sums[layout] = _Sum(layout, HdrHistogram(*layout).counts_len)
        sums[layout].add(payload)
    merged = _rebuild(sums.values())
    if merged is None or merged.get_total_count() == 0:
        return {}
    return {key: merged.get_value_at_percentile(q) / 1000.0 for key, q in PERCENTILES.items()}


def _rebuild(sums: Iterable[_Sum]) -> HdrHistogram | None:
    """One histogram holding every summed count (layouts merged value by value)."""
    merged: HdrHistogram | None = None
    for part in sums:
        histogram = HdrHistogram(*part.layout)
        for index in np.flatnonzero(part.total):
            value = histogram.get_value_from_index(int(index))
            histogram.record_value(value, int(part.total[index]))
        if merged is None:
            merged = histogram
        else:
            merged.add(histogram)
    return merged


def describe(base: Mapping[str, float], cand: Mapping[str, float], column: str) -> str:
    """'whole-run p99 from merged histograms 118 -> 131 ms' when both runs have them."""
    b, c = base.get(column, math.nan), cand.get(column, math.nan)
    if math.isnan(b) or math.isnan(c):
        return ""
    return f"whole-run {column} from merged histograms {b:.4g} -> {c:.4g} ms"
