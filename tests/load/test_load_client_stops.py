"""Clients that walk away: streams abandoned mid-way and requests cancelled at a timeout are
counted as such, never as failures, and the connection is really closed."""

from __future__ import annotations

from pathlib import Path

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
    "stream_share": 1.0,
    "abandon_share": 0.4,
    "abandon_after": 2,
    "cancel_share": 0.3,
    "cancel_after": "40ms",  # the mock's streams take 60 ms: cancelled half-way
    "long_share": 0.0,
}


def test_abandoned_and_cancelled_streams_are_their_own_counts(
    upstream: Upstream, tmp_path: Path, settings: Settings
) -> None:
    lifecycle = scenario("lifecycle.py", duration=3, params=PARAMS)
    load = start_load(lifecycle, "test", upstream.url, API_KEY, tmp_path, settings)
    assert load.wait(lifecycle.duration + 60) == 0
    records = list(read_spool(load.spool_path))
    windows = [r for r in records if isinstance(r, Window)]
    counts = {
        series: sum(w.count for w in windows if w.series == series)
        for series in ("latency", "abandoned", "cancelled")
    }
    total = sum(counts.values())
    assert total > 30
    assert 0.25 < counts["abandoned"] / total < 0.55
    assert 0.15 < counts["cancelled"] / total < 0.45
    assert sum(w.failures for w in windows) == 0
    assert [r for r in records if isinstance(r, ErrorSample)] == []
    assert {w.name for w in windows if w.series == "abandoned"} == {"chat_stream:gpt-4o-mini"}
    cancelled = [w for w in windows if w.series == "cancelled"]
    assert max(w.max for w in cancelled) < 200.0  # given up at 40 ms, not at the 60 s timeout
