"""Synthetic runs with known properties, for tests and the detection-power benchmark.

A synthetic run imitates what the load plugin records, with the kinds of noise
real runs have: request latencies are lognormal per endpoint; each window's
percentiles carry the sampling error of a quantile of ``count`` requests; a slow
AR(1) factor moves all endpoints together from window to window (autocorrelation);
each run gets its own small offset (run-to-run noise: a baseline is a different
run, never a resample of the same one); errors are overdispersed (bursty) around
their rate; memory has a warm-up ramp, a GC-like AR(1) wobble and a small random
slope per run. Every parameter is in ``Profile``; nothing is drawn from a global
random state, so a seed gives the same run everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from observatory.analysis.bootstrap import Floats
from observatory.analysis.rundata import (
    ERROR_COLUMNS,
    RESOURCE_COLUMNS,
    WINDOW_COLUMNS,
    RunData,
    empty_frame,
)
from observatory.domain import FaultPhase, Series

QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
# The signatures of the base error process (every synthetic run shows both).
BASE_MESSAGES = {
    "http_500": "HTTPError: <n> Server Error: Internal Server Error for url: <url>",
    "timeout": "TimeoutError: read timed out after <n> s",
}


@dataclass(frozen=True)
class Endpoint:
    """One request name: its rate and latency distribution."""

    name: str
    rate: float  # requests per second
    median_ms: float
    sigma: float  # lognormal shape of one request's latency
    streaming: bool = False


DEFAULT_ENDPOINTS = (
    Endpoint("chat", 10.0, 120.0, 0.35),
    Endpoint("chat_stream", 5.0, 400.0, 0.30, streaming=True),
    Endpoint("embeddings", 5.0, 60.0, 0.30),
)


@dataclass(frozen=True)
class Profile:
    """The shape of a synthetic run and of its noise."""

    duration_s: float = 3600.0
    warmup_s: float = 300.0
    window_s: float = 10.0
    endpoints: tuple[Endpoint, ...] = DEFAULT_ENDPOINTS
    open_model: bool = False
    error_rate: float = 0.001
    error_dispersion: float = 0.3  # sd of the log error-rate factor per window
    run_sd: float = 0.01  # run-to-run sd of log latency per endpoint
    window_sd: float = 0.03  # marginal sd of the per-window log latency factor
    window_rho: float = 0.5  # its lag-1 autocorrelation
    memory_mb: float = 350.0
    memory_noise_mb: float = 2.0
    memory_run_sd: float = 5.0  # MB: each gateway start settles at a slightly different level
    run_slope_sd: float = 1.0  # MB/hour: harmless drift that differs between runs
    sample_s: float = 5.0
    cpu_percent: float = 35.0
    cpu_sd: float = 3.0
    histograms: bool = False  # attach real encoded HDR histograms (slower)
    phases: tuple[FaultPhase, ...] = field(default_factory=tuple)


def ar1(rng: np.random.Generator, n: int, sd: float, rho: float) -> Floats:
    """A stationary AR(1) series with marginal sd ``sd``."""
    if n == 0:
        return np.zeros(0)
    innovations = rng.normal(0.0, sd * np.sqrt(1 - rho**2), n)
    innovations[0] = rng.normal(0.0, sd)
    out = np.empty(n)
    out[0] = innovations[0]
    for i in range(1, n):  # n <= 8,640 per run: a plain loop is fast enough and clear
        out[i] = rho * out[i - 1] + innovations[i]
    return out


def synthetic_run(profile: Profile = Profile(), seed: int = 0) -> RunData:
    """One run drawn from ``profile``; the same seed gives the same run."""
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, profile.duration_s, profile.window_s)
    shared = ar1(rng, t.size, profile.window_sd, profile.window_rho)
    warm = 0.2 * np.exp(-t / max(profile.warmup_s / 3, 1.0))  # cold caches at the start
    frames, errors = [], []
    for endpoint in profile.endpoints:
        factor = shared + warm + rng.normal(0.0, profile.run_sd)
        latency, failures = _latency_windows(rng, profile, endpoint, t, factor)
        frames.append(latency)
        errors.append(_error_rows(rng, t, endpoint.name, failures))
        frames.extend(_side_series(rng, profile, endpoint, t, latency["count"].to_numpy()))
    windows = pd.concat(frames, ignore_index=True).astype(WINDOW_COLUMNS)
    if profile.histograms:
        windows = _attach_histograms(rng, windows)
    return RunData(
        windows=windows,
        errors=pd.concat(errors, ignore_index=True).astype(ERROR_COLUMNS)
        if errors
        else empty_frame(ERROR_COLUMNS),
        resources=_resources(rng, profile),
        phases=profile.phases,
        duration_s=profile.duration_s,
        warmup_s=profile.warmup_s,
        window_s=profile.window_s,
        open_model=profile.open_model,
    )


def _percentiles(
    rng: np.random.Generator, median_ms: float, sigma: float, counts: Floats, factor: Floats
) -> dict[str, Floats]:
    """Per-window percentiles with the sampling error of a quantile of ``counts`` values."""
    n = np.maximum(counts, 1)
    columns: dict[str, Floats] = {}
    running = np.zeros(counts.size)
    for column, q in QUANTILES.items():
        z = stats.norm.ppf(q)
        # sd of a sample quantile on the log scale: sigma * sqrt(q (1 - q) / n) / phi(z)
        se = sigma * np.sqrt(q * (1 - q) / n) / stats.norm.pdf(z)
        log_value = np.log(median_ms) + factor + sigma * z + rng.normal(0.0, 1.0, counts.size) * se
        running = np.maximum(running, np.exp(log_value))  # percentiles never decrease
        columns[column] = running.copy()
    columns["max"] = columns["p999"] * np.exp(np.abs(rng.normal(0.0, 0.2, counts.size)))
    return columns


def _latency_windows(
    rng: np.random.Generator, profile: Profile, endpoint: Endpoint, t: Floats, factor: Floats
) -> tuple[pd.DataFrame, Floats]:
    counts = rng.poisson(endpoint.rate * profile.window_s, t.size).astype(float)
    burst = ar1(rng, t.size, profile.error_dispersion, 0.7)
    p_error = profile.error_rate * np.exp(burst - profile.error_dispersion**2 / 2)
    failures = rng.binomial(counts.astype(int), np.clip(p_error, 0.0, 1.0)).astype(float)
    frame = _window_frame(Series.LATENCY, endpoint.name, t, profile.window_s, counts, failures)
    for column, values in _percentiles(
        rng, endpoint.median_ms, endpoint.sigma, counts, factor
    ).items():
        frame[column] = values
    return frame, failures


def _window_frame(
    series: str, name: str, t: Floats, window_s: float, counts: Floats, failures: Floats
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series": series,
            "name": name,
            "t": t,
            "length_s": window_s,
            "count": counts.astype(np.int64),
            "failures": failures.astype(np.int64),
            "histogram": "",
            "saturated": False,
        }
    )


def _side_series(
    rng: np.random.Generator, profile: Profile, endpoint: Endpoint, t: Floats, counts: Floats
) -> list[pd.DataFrame]:
    """Overhead for every endpoint, TTFT and inter-chunk gaps for streaming ones, open-model."""
    specs: list[tuple[str, float, float, Floats]] = [(Series.OVERHEAD, 3.0, 0.5, counts)]
    if endpoint.streaming:
        specs += [(Series.TTFT, 100.0, 0.3, counts), (Series.INTER_CHUNK, 20.0, 0.25, counts * 19)]
    if profile.open_model:
        specs += [(Series.LATE, 30.0, 0.8, rng.poisson(0.001 * counts).astype(float))]
        specs += [(Series.DROPPED, 1.0, 0.0, rng.poisson(0.0002 * counts).astype(float))]
    frames = []
    for series, median, sigma, n in specs:
        frame = _window_frame(series, endpoint.name, t, profile.window_s, n, np.zeros(t.size))
        noise = ar1(rng, t.size, 0.02, profile.window_rho)
        for column, values in _percentiles(rng, median, sigma, n, noise).items():
            frame[column] = values
        frames.append(frame)
    return frames


def _error_rows(rng: np.random.Generator, t: Floats, name: str, failures: Floats) -> pd.DataFrame:
    timeouts = rng.binomial(failures.astype(int), 0.2)
    rows = pd.DataFrame(
        {
            "t": np.concatenate([t, t]),
            "name": name,
            "category": ["http_500"] * t.size + ["timeout"] * t.size,
            "count": np.concatenate([failures - timeouts, timeouts]).astype(np.int64),
            "message": [BASE_MESSAGES["http_500"]] * t.size + [BASE_MESSAGES["timeout"]] * t.size,
        }
    )
    return rows[rows["count"] > 0]


def _resources(rng: np.random.Generator, profile: Profile) -> pd.DataFrame:
    t = np.arange(0.0, profile.duration_s, profile.sample_s)
    slope = rng.normal(0.0, profile.run_slope_sd)
    rss = (
        profile.memory_mb
        + rng.normal(0.0, profile.memory_run_sd)
        + 60.0 * (1 - np.exp(-t / 120.0))
        + slope * t / 3600.0
        + ar1(rng, t.size, profile.memory_noise_mb, 0.8)
    )
    gateway = pd.DataFrame(
        {
            "t": t,
            "role": "gateway",
            "rss_mb": rss,
            "uss_mb": rss - 40.0,
            "cpu_percent": profile.cpu_percent + rng.normal(0.0, profile.cpu_sd, t.size),
            "threads": 20.0,
            "fds": 50.0,
            "connections": 10.0,
        }
    )
    loadgen = gateway.assign(role="loadgen", rss_mb=150.0, uss_mb=140.0, cpu_percent=40.0)
    return pd.concat([gateway, loadgen], ignore_index=True).astype(RESOURCE_COLUMNS)


def _attach_histograms(rng: np.random.Generator, windows: pd.DataFrame) -> pd.DataFrame:
    """Real encoded HDR histograms (microseconds); a small pool reused across windows."""
    from hdrh.histogram import HdrHistogram  # only here: the package is optional for analysis

    pool: dict[tuple[str, str], list[str]] = {}
    encoded = []
    for index, (series, name, p50) in enumerate(
        zip(windows["series"], windows["name"], windows["p50"], strict=True)
    ):
        key = (str(series), str(name))
        if key not in pool:
            pool[key] = []
            for _ in range(8):
                histogram = HdrHistogram(1, 3_600_000_000, 3)
                for value in rng.lognormal(np.log(float(p50) * 1000), 0.3, 200):
                    histogram.record_value(int(value))
                pool[key].append(histogram.encode().decode())
        encoded.append(pool[key][index % 8])
    return windows.assign(histogram=encoded)
