"""Synthetic runs and injections: the test bed must itself be right."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from observatory.analysis.injection import add_errors, add_leak, saturate, scale_latency
from observatory.analysis.rundata import WINDOW_COLUMNS, RunData, frame
from observatory.analysis.synthetic import Profile, synthetic_run
from observatory.domain import Series

PROFILE = Profile(duration_s=600.0, warmup_s=60.0)


def test_same_seed_same_run_other_seed_other_run() -> None:
    a, b, c = synthetic_run(PROFILE, 1), synthetic_run(PROFILE, 1), synthetic_run(PROFILE, 2)
    pd.testing.assert_frame_equal(a.windows, b.windows)
    assert not a.windows["p99"].equals(c.windows["p99"])


def test_shape_of_a_run() -> None:
    run = synthetic_run(PROFILE, 3)
    run.validate()
    latency = run.windows[run.windows["series"] == Series.LATENCY]
    assert set(latency["name"]) == {"chat", "chat_stream", "embeddings"}
    assert latency["t"].nunique() == 60
    ordered = latency[["p50", "p90", "p95", "p99", "p999"]].to_numpy()
    assert (np.diff(ordered, axis=1) >= 0).all()  # percentiles never decrease
    chat = latency[latency["name"] == "chat"]
    assert chat["count"].mean() == pytest.approx(100, rel=0.1)  # 10 req/s x 10 s
    assert set(run.resources["role"]) == {"gateway", "loadgen"}


def test_error_rows_add_up_to_failures() -> None:
    run = synthetic_run(Profile(duration_s=600.0, warmup_s=60.0, error_rate=0.05), 4)
    latency = run.windows[run.windows["series"] == Series.LATENCY]
    assert run.errors["count"].sum() == latency["failures"].sum() > 0


def test_injections_change_only_what_they_say() -> None:
    run = synthetic_run(PROFILE, 5)
    slower = scale_latency(run, 1.5, names=["chat"], from_s=300)
    w, s = run.windows, slower.windows
    changed = (s["p99"] != w["p99"]).to_numpy()
    expected = (w["series"] == Series.LATENCY) & (w["name"] == "chat") & (w["t"] >= 300)
    assert (changed == expected.to_numpy()).all()
    assert (s["p50"] == w["p50"]).all()  # the tail only, by default

    failing = add_errors(run, 0.5, from_s=300, seed=1)
    added = failing.windows["failures"].sum() - run.windows["failures"].sum()
    assert added > 0
    assert failing.errors.loc[failing.errors["category"] == "injected", "count"].sum() == added

    leaking = add_leak(run, 36.0, from_s=100)
    gateway = leaking.resources["role"] == "gateway"
    growth = leaking.resources.loc[gateway, "rss_mb"] - run.resources.loc[gateway, "rss_mb"]
    assert growth.max() == pytest.approx(36.0 * (595 - 100) / 3600)
    assert (
        leaking.resources.loc[~gateway, "rss_mb"] == run.resources.loc[~gateway, "rss_mb"]
    ).all()

    saturated = saturate(run, 0.25, seed=2)
    assert saturated.windows.groupby("t")["saturated"].first().mean() == pytest.approx(0.25)


def test_frame_builder_fills_optional_cells() -> None:
    windows = frame(
        [
            {
                "series": "latency",
                "name": "chat",
                "t": 0.0,
                "length_s": 10.0,
                "count": 5,
                "failures": 0,
                "p50": 1.0,
                "p90": 2.0,
                "p95": 2.0,
                "p99": 3.0,
                "p999": 3.0,
                "max": 3.0,
            }
        ],
        WINDOW_COLUMNS,
    )
    assert windows.loc[0, "histogram"] == ""
    assert not windows.loc[0, "saturated"]
    empty = RunData.empty()
    assert list(empty.with_frames(windows=windows).windows.columns) == list(WINDOW_COLUMNS)
