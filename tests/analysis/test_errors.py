"""Error verdicts on constructed runs with known answers: counts, bursts, new failures,
busy hosts, and the order of the reason line."""

from __future__ import annotations

import numpy as np
import pytest

from observatory.analysis.bootstrap import Sample
from observatory.analysis.bursts import Burst, find_bursts
from observatory.analysis.changepoint import change_points, error_signal
from observatory.analysis.comparison import compare, verdict_of
from observatory.analysis.failures import min_count, new_failures, shown_message
from observatory.analysis.injection import busy_neighbours, scale_latency
from observatory.analysis.metrics import view
from observatory.analysis.rundata import (
    ERROR_COLUMNS,
    RESOURCE_COLUMNS,
    WINDOW_COLUMNS,
    RunData,
    frame,
)
from observatory.analysis.synthetic import Profile, ar1, synthetic_run
from observatory.analysis.thresholds import resolve
from observatory.analysis.verdict import analyse, headline
from observatory.domain import Finding, FindingVerdict, Series, Verdict
from observatory.settings import ThresholdSettings

CLOSED = "Cannot send a request, as the client has been closed"
LIMITS = resolve(ThresholdSettings())


def run(
    failures: dict[str, np.ndarray],
    *,
    per_window: int = 20,
    warmup_s: float = 60.0,
    message: str = CLOSED,
    seed: int = 0,
    started_at: float | None = None,
) -> RunData:
    """A run of 10 s windows; ``failures`` per name and window (after ``warmup_s``)."""
    rng = np.random.default_rng(seed)
    warm = int(warmup_s // 10)
    windows, errors = [], []
    for name, steady in failures.items():
        n = warm + steady.size
        fails = np.concatenate([np.zeros(warm), steady]).astype(int)
        p50 = 100.0 * np.exp(ar1(rng, n, 0.03, 0.5))
        for i in range(n):
            windows.append(
                {"series": Series.LATENCY.value, "name": name, "t": 10.0 * i, "length_s": 10.0,
                 "count": per_window, "failures": fails[i], "p50": p50[i], "p90": p50[i] * 1.5,
                 "p95": p50[i] * 1.7, "p99": p50[i] * 2, "p999": p50[i] * 2.5, "max": p50[i] * 3}
            )  # fmt: skip
            if fails[i]:
                errors.append(
                    {"t": 10.0 * i, "name": name, "category": "http_500", "count": fails[i],
                     "message": message}
                )  # fmt: skip
    duration = 10.0 * (warm + max(f.size for f in failures.values()))
    memory = [
        {"t": t, "role": "gateway", "rss_mb": 300.0 + rng.normal(0, 1), "cpu_percent": 30.0}
        for t in np.arange(0.0, duration, 5.0)
    ]
    return RunData(
        windows=frame(windows, WINDOW_COLUMNS),
        errors=frame(errors, ERROR_COLUMNS),
        resources=frame(memory, RESOURCE_COLUMNS),
        phases=(),
        duration_s=duration,
        warmup_s=warmup_s,
        window_s=10.0,
        open_model=False,
        started_at=started_at,
    )


def bursty(windows: int = 20) -> np.ndarray:
    """150 failures of ~406 requests: bursts of ~25 s every ~65 s (the issue's run)."""
    fails = np.zeros(windows)
    for start in (1, 7, 14):
        fails[start : start + 3] = [20, 20, 10]
    return fails


QUIET = {"chat:gpt-4o-mini": np.zeros(20)}


def test_bursty_errors_on_one_name_against_none_are_a_regression() -> None:
    base = run({"chat:gpt-4o": np.zeros(20), **QUIET}, seed=1)
    cand = run({"chat:gpt-4o": bursty(), **QUIET}, seed=2)
    result = analyse(cand, base, ThresholdSettings())
    assert result.verdict is Verdict.REGRESSION
    [rate] = [f for f in result.findings if f.metric == "error_rate" and f.name == "chat:gpt-4o"]
    assert rate.verdict is FindingVerdict.REGRESSION
    assert rate.p_value is not None
    assert rate.p_value < 0.01
    assert result.reason.startswith(
        "chat:gpt-4o: 150 of 400 requests failed (38 %) vs 0 of 400 in the baseline, "
        "in 3 bursts of ~30s every ~1m5s, first at 1m10s; "
        f'new error "{CLOSED}" (150x, http_500)'
    )


def test_no_errors_on_either_side_is_unchanged() -> None:
    base, cand = run({"chat": np.zeros(20)}, seed=1), run({"chat": np.zeros(20)}, seed=2)
    result = analyse(cand, base, ThresholdSettings())
    rates = [f for f in result.findings if f.metric.startswith("error_rate")]
    assert rates
    assert all(f.verdict is FindingVerdict.UNCHANGED for f in rates)


def test_side_by_side_bursts_are_a_regression_too() -> None:
    base = run({"chat:gpt-4o": np.zeros(20), **QUIET}, seed=1, started_at=1e9)
    cand = run({"chat:gpt-4o": bursty(), **QUIET}, seed=2, started_at=1e9)
    result = analyse(cand, base, ThresholdSettings())
    [rate] = [f for f in result.findings if f.metric == "error_rate" and f.name == "chat:gpt-4o"]
    assert rate.verdict is FindingVerdict.REGRESSION
    assert "side by side" in rate.detail


def _clustered(rng: np.random.Generator, windows: int, rate: float, per_window: float) -> Sample:
    """Failures in bursts: a log-normal AR(1) factor on the rate (sd 1, rho 0.7)."""
    counts = rng.poisson(per_window, windows).astype(float)
    factor = np.exp(ar1(rng, windows, 1.0, 0.7) - 0.5)
    failures = rng.binomial(counts.astype(int), np.clip(rate * factor, 0, 1)).astype(float)
    return Sample(failures, counts, scale=100.0)


def test_clustered_errors_of_unchanged_runs_are_rarely_flagged() -> None:
    rng = np.random.default_rng(15)
    flagged = 0
    for pair in range(200):  # one-hour runs at 2 req/s, 0.5 % errors in bursts
        base, cand = _clustered(rng, 330, 0.005, 20), _clustered(rng, 330, 0.005, 20)
        e = compare("error_rate", f"aa{pair}", base, cand, key="error_rate", unit="%",
                    min_windows=12)  # fmt: skip
        flagged += verdict_of(e, e.p_value, LIMITS) is FindingVerdict.REGRESSION
    assert flagged <= 4  # <= 2 %, with no family correction at all (measured: 1 of 200)


def test_bursts_and_their_period() -> None:
    [series] = find_bursts(run({"chat": bursty(24)}))
    assert series.bursts[0] == Burst("chat", 70.0, 100.0, 50, 60)
    assert [b.start_s for b in series.bursts] == [70.0, 130.0, 200.0]
    assert series.bursts[0].share == pytest.approx(50 / 60)
    assert series.period_s == pytest.approx(65.0)
    assert series.describe() == "in 3 bursts of ~30s every ~1m5s, first at 1m10s"


def test_a_clean_window_inside_a_burst_does_not_split_it_and_irregular_bursts_have_no_period() -> (
    None
):
    fails = np.zeros(40)
    fails[[2, 4, 5]] = 3  # one burst with a clean window inside
    fails[[15, 39]] = 1
    [series] = find_bursts(run({"chat": fails}))
    assert [(b.start_s, b.end_s, b.failures) for b in series.bursts] == [
        (80.0, 120.0, 9),
        (210.0, 220.0, 1),
        (450.0, 460.0, 1),
    ]
    assert series.period_s is None
    assert find_bursts(run({"chat": np.zeros(10)})) == ()


def test_a_step_that_opens_with_a_burst_is_one_change_point() -> None:
    rng = np.random.default_rng(4)
    t = np.arange(330) * 10.0
    counts = rng.poisson(200, t.size).astype(float)
    p = np.full(t.size, 0.001)
    p[180:183], p[183:] = 0.5, 0.01  # a 30 s burst, then ten times the errors
    failures = rng.binomial(counts.astype(int), p).astype(float)
    [point] = change_points(error_signal(t, failures, counts), "error_rate", "*", "%", 10.0)
    assert point.at_s == 1800.0
    assert point.before < 0.2
    assert 0.8 < point.after < 1.3
    assert point.burst is not None
    assert point.describe().startswith("errors rose from ")
    assert "after a burst of" in point.describe()


def test_a_lone_burst_stays_a_rise_and_a_fall() -> None:
    rng = np.random.default_rng(5)
    t = np.arange(330) * 10.0
    counts = rng.poisson(200, t.size).astype(float)
    p = np.full(t.size, 0.001)
    p[180:183] = 0.5
    failures = rng.binomial(counts.astype(int), p).astype(float)
    points = change_points(error_signal(t, failures, counts), "error_rate", "*", "%", 10.0)
    assert [p.after > p.before for p in points] == [True, False]
    assert all(p.burst is None for p in points)


def test_a_single_burst_of_a_new_error_in_an_hour_is_found() -> None:
    """63 minutes at 2 req/s, 5 failures in 24 s at 60 min with a message never seen."""
    base = run({"chat": np.zeros(372)}, warmup_s=60.0, seed=1)
    fails = np.zeros(372)
    fails[354:357] = [2, 2, 1]
    cand = run({"chat": fails}, warmup_s=60.0, seed=2)
    [new] = new_failures(view(cand, keep_disturbed=True), base)
    assert (new.name, new.count, new.first_s, new.last_s) == ("chat", 5, 3600.0, 3630.0)
    result = analyse(cand, base, ThresholdSettings())
    assert result.verdict is Verdict.REGRESSION
    assert result.reason.startswith(f'chat: new error "{CLOSED}" (5x, http_500) at 1h')


def test_the_shown_message_is_the_body_s_own() -> None:
    body = 'HTTPError: <n> | body: {"error":{"message":"Cannot send a request, as the client"}}'
    assert shown_message(body) == "Cannot send a request, as the client"
    assert shown_message("ConnectionResetError: reset by peer") == (
        "ConnectionResetError: reset by peer"
    )
    multiline = '| body: {"error":{"message":"OpenAIException - Connection error.\\nNone"}}'
    assert shown_message(multiline) == "OpenAIException - Connection error."


def test_a_new_error_needs_a_baseline_and_k_scales_with_exposure() -> None:
    fails = np.zeros(40)
    fails[30] = 9
    cand = run({"chat": fails})
    assert not [f for f in analyse(cand, None, ThresholdSettings()).findings if "new" in f.metric]
    assert min_count(1000, 1000) == 5  # 0.5^5 = 3 %
    assert min_count(1000, 4000) == 14  # the candidate served 4x more: 0.8^14 = 4 %


def test_unchanged_runs_show_no_new_failures() -> None:
    """30 one-hour A/A pairs from the synthetic base error process (two signatures)."""
    profile = Profile(error_rate=0.002)
    for seed in range(30):
        base, cand = (
            synthetic_run(profile, 20000 + 2 * seed),
            synthetic_run(profile, 20001 + 2 * seed),
        )
        assert new_failures(view(cand, keep_disturbed=True), base) == []


def _busy(data: RunData) -> RunData:
    """Other processes busy in 60 % of the steady windows."""
    return busy_neighbours(data, 1.5, from_s=60.0, until_s=60.0 + 0.6 * (data.duration_s - 60.0))


def test_errors_on_a_busy_host_are_a_regression_and_latency_is_not_judged() -> None:
    base = run({"chat:gpt-4o": np.zeros(20), **QUIET}, seed=1)
    cand = _busy(run({"chat:gpt-4o": bursty(), **QUIET}, seed=2))
    result = analyse(cand, base, ThresholdSettings())
    assert result.verdict is Verdict.REGRESSION
    assert result.reason.startswith("chat:gpt-4o: 150 of 400 requests failed")
    assert result.reason.endswith(
        "; latency not judged: other processes busy on the host in 60% of steady windows"
    )
    latency = [f for f in result.findings if f.metric.startswith("latency_")]
    assert all(f.verdict is FindingVerdict.INCONCLUSIVE for f in latency)


def test_latency_on_a_busy_host_stays_inconclusive() -> None:
    base = run({"chat": np.zeros(40)}, seed=1)
    cand = _busy(scale_latency(run({"chat": np.zeros(40)}, seed=2), 1.5, columns=("p99",)))
    result = analyse(cand, base, ThresholdSettings())
    assert result.verdict is Verdict.INCONCLUSIVE
    assert "other processes busy on the host" in result.reason


def _finding(metric: str, name: str = "*", detail: str = "") -> Finding:
    return Finding(metric, name, FindingVerdict.REGRESSION, 1.0, 2.0, 1.0, None, None, None,
                   0.1, "ms", detail)  # fmt: skip


def test_the_reason_names_crash_then_errors_then_memory_then_latency() -> None:
    latency = _finding("latency_p99", "chat")
    memory = _finding("memory_peak")
    errors = _finding("error_rate", "chat", "5 of 100 requests failed (5 %) vs 0 of 100 ...")
    new = _finding(
        "new_failure", "chat", 'new error "boom" (5x, http_500) at 1m; never in the baseline'
    )
    crash = _finding("crash", detail="gateway crashed: exit 3")
    first = headline([latency, memory]).split(" (and")[0]  # words from analysis.labels
    assert "memory" in first
    assert "latency" not in first
    assert headline([latency, memory, errors]).startswith("chat: 5 of 100 requests failed")
    assert headline([latency, new, memory]) == (
        'chat: new error "boom" (5x, http_500) at 1m (and 2 more)'
    )
    assert headline([latency, new, errors]) == (
        "chat: 5 of 100 requests failed (5 %) vs 0 of 100 ...; "
        'new error "boom" (5x, http_500) at 1m (and 1 more)'
    )
    assert "crash" in headline([memory, errors, crash]).split(" (and")[0]


def test_a_log_flood_is_named_before_the_overhead_it_causes() -> None:
    overhead = _finding("overhead_p50", "chat")
    flood = _finding("log_bytes_per_request")
    first = headline([overhead, flood]).split(" (and")[0]
    assert "log" in first
    assert "overhead" not in first
