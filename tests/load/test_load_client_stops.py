"""Clients that walk away: streams abandoned mid-way and requests cancelled at a timeout are
counted as such, never as failures, and the connection is really closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from load_support import API_KEY, Upstream, scenario

from observatory.domain import ErrorSample, Window
from observatory.load.runner import start_load
from observatory.load.spool import read_spool
from observatory.settings import Settings

PARAMS = {
    "models": {"gpt-4o-mini": 1},
    "start_after": {},
    "idle": {},
    "fleet": 0,
    "abandon_share": 0.4,
    "abandon_after": 2,
    "cancel_share": 0.3,
    "cancel_after": "40ms",
    "long_share": 0.0,
}


def run(upstream: Upstream, tmp_path: Path, settings: Settings, **params: Any) -> list[Any]:
    lifecycle = scenario("lifecycle.py", duration=3, params={**PARAMS, **params})
    load = start_load(lifecycle, "test", upstream.url, API_KEY, tmp_path, settings)
    assert load.wait(lifecycle.duration + 60) == 0
    records = list(read_spool(load.spool_path))
    assert [r for r in records if isinstance(r, ErrorSample)] == []
    windows = [r for r in records if isinstance(r, Window)]
    assert sum(w.failures for w in windows) == 0  # walking away is not the gateway's failure
    return windows


def counts(windows: list[Window]) -> dict[str, int]:
    return {
        series: sum(w.count for w in windows if w.series == series)
        for series in ("latency", "abandoned", "cancelled")
    }


def test_streams_abandoned_and_cancelled_midway_are_their_own_counts(
    upstream: Upstream, tmp_path: Path, settings: Settings
) -> None:
    windows = run(upstream, tmp_path, settings, stream_share=1.0)  # streams take 60 ms
    seen = counts(windows)
    total = sum(seen.values())
    assert total > 30
    assert 0.25 < seen["abandoned"] / total < 0.55
    assert 0.15 < seen["cancelled"] / total < 0.45
    assert {w.name for w in windows if w.series == "abandoned"} == {"chat_stream:gpt-4o-mini"}
    cancelled = [w for w in windows if w.series == "cancelled"]
    assert max(w.max for w in cancelled) < 200.0  # given up at 40 ms, not at the 60 s timeout


def test_requests_cancelled_before_the_answer_are_counted_not_failed(
    upstream: Upstream, tmp_path: Path, settings: Settings
) -> None:
    upstream.faults(added_latency=0.1)  # every answer takes longer than the client waits
    windows = run(upstream, tmp_path, settings, stream_share=0.0)
    seen = counts(windows)
    assert seen["abandoned"] == 0
    assert seen["cancelled"] > 5
    assert 0.15 < seen["cancelled"] / (seen["cancelled"] + seen["latency"]) < 0.45
    assert {w.name for w in windows if w.series == "cancelled"} == {"chat:gpt-4o-mini"}
