"""Downsampling for display only: the analysis always sees every window.

A 24-hour run has 8,640 windows per request name; a chart gains nothing from more points
than it has pixels. Windows are grouped into buckets of a whole number of windows on a
grid shared by candidate and baseline (both use seconds since their own start), so their
lines align without interpolation. Latency percentiles keep the worst window of each
bucket (a spike must stay visible); rates are recomputed from the summed counts.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

DEFAULT_MAX_POINTS = 2000
SIGNIFICANT_DIGITS = 4  # HDR histograms keep 3; one more is display headroom


def display_step(span_s: float, window_s: float, max_points: int = DEFAULT_MAX_POINTS) -> float:
    """The bucket width: the smallest whole number of windows giving at most max_points."""
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    windows = max(1, math.ceil(span_s / window_s / max(1, max_points)))
    return windows * window_s


def bucket_of(t: pd.Series, step: float) -> np.ndarray:
    """Bucket start (seconds) of each offset in ``t``."""
    return np.asarray((np.floor(t.to_numpy(dtype=float) / step) * step).round(3))


def axis(x: pd.Index) -> list[float]:
    """Bucket starts as short numbers (whole seconds print without a fraction)."""
    values = np.round(x.to_numpy(dtype=float), 3)
    return [int(v) if v.is_integer() else float(v) for v in values.tolist()]


def worst_per_bucket(frame: pd.DataFrame, columns: list[str], step: float) -> pd.DataFrame:
    """Per bucket, the largest value of each column (indexed by bucket start)."""
    if frame.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    grouped = frame.assign(bucket=bucket_of(frame["t"], step)).groupby("bucket")[columns]
    return grouped.max()


def mean_per_bucket(frame: pd.DataFrame, columns: list[str], step: float) -> pd.DataFrame:
    """Per bucket, the mean of each column, ignoring missing samples."""
    if frame.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    grouped = frame.assign(bucket=bucket_of(frame["t"], step)).groupby("bucket")[columns]
    return grouped.mean()


def sums_per_bucket(frame: pd.DataFrame, columns: list[str], step: float) -> pd.DataFrame:
    """Per bucket, the sum of each column."""
    if frame.empty:
        return pd.DataFrame(columns=columns, dtype=float)
    grouped = frame.assign(bucket=bucket_of(frame["t"], step)).groupby("bucket")[columns]
    return grouped.sum()


def compact(values: np.ndarray | pd.Series) -> list[float | None]:
    """Values rounded to a few significant digits for a small page; NaN becomes null."""
    array = np.asarray(values, dtype=float)
    finite = np.isfinite(array)
    out = np.zeros_like(array)
    nonzero = finite & (array != 0)
    if nonzero.any():
        magnitude = np.floor(np.log10(np.abs(array[nonzero])))
        decimals = np.clip(SIGNIFICANT_DIGITS - 1 - magnitude, 0, 12).astype(int)
        rounded = np.empty(decimals.shape)
        for digits in np.unique(decimals):
            mask = decimals == digits
            rounded[mask] = np.round(array[nonzero][mask], int(digits))
        out[nonzero] = rounded
    listed: list[float | None] = out.tolist()
    for index in np.flatnonzero(~finite):
        listed[int(index)] = None
    return listed
