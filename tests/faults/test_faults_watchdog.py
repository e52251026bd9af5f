"""The early-abort watch ignores control-plane requests: under pressure they are the fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from observatory.domain import Window
from observatory.settings import AbortSettings
from observatory.watchdog import ErrorRateWatch

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def window(name: str, index: int, count: int, failures: int) -> Window:
    return Window(
        series="latency", name=name, start=T0 + timedelta(seconds=index), length_s=1.0,
        count=count, failures=failures, histogram="",
        p50=1.0, p90=1.0, p95=1.0, p99=1.0, p999=1.0, max=1.0,
    )  # fmt: skip


def watch_over(name: str) -> ErrorRateWatch:
    """Three seconds where ``name`` fails 90 of its 100 requests next to 20 good chat ones."""
    watch = ErrorRateWatch(AbortSettings(error_rate=0.2, sustained=3.0), 1.0, T0.timestamp())
    for i in range(3):
        watch.add([window("chat", i, 20, 0), window(name, i, 100, 90)])
    return watch


def test_failing_control_plane_requests_do_not_abort_the_run() -> None:
    assert watch_over("control:/spend/logs").breach() is None


def test_failing_data_plane_or_health_requests_still_do() -> None:
    assert watch_over("embeddings").breach() is not None
    assert watch_over("health:/health/liveliness").breach() is not None
