"""Per-phase analysis of fault runs: the phases' thresholds, the data plane judged on its own,
and the health probes under control-plane pressure (synthetic runs with known effects)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from observatory.analysis.injection import add_errors, scale_latency
from observatory.analysis.rundata import RunData
from observatory.analysis.synthetic import Endpoint, Profile, synthetic_run
from observatory.analysis.verdict import analyse
from observatory.domain import FaultPhase, Finding, FindingVerdict, Verdict
from observatory.settings import ThresholdSettings

TH = ThresholdSettings(metrics={})
START, LENGTH = 600.0, 120.0
END = START + LENGTH
ALL = ("p50", "p90", "p95", "p99", "p999", "max")
CHAT = Endpoint("chat", 10.0, 120.0, 0.35)
HEALTH = Endpoint("health:/health/liveliness", 1.0, 5.0, 0.3)
CONTROL = Endpoint("control:/health", 5.0, 300.0, 0.4)


def run(
    seed: int, fault: str, endpoints: tuple[Endpoint, ...] = (CHAT,), **params: object
) -> RunData:
    phase = FaultPhase(fault, START, LENGTH, dict(params))
    profile = Profile(duration_s=1800.0, warmup_s=120.0, endpoints=endpoints, phases=(phase,))
    return synthetic_run(profile, seed=seed)


def only(findings: tuple[Finding, ...], metric: str, name: str = "*") -> Finding:
    [found] = [f for f in findings if f.metric == metric and f.name == name]
    return found


def test_p99_ratio_gate_holds_the_line_it_is_given() -> None:
    three_times = scale_latency(
        run(1, "redis_slow", max_p99_ratio=2.0), 3.0, columns=ALL, from_s=START, until_s=END
    )
    gate = only(analyse(three_times, None, TH).findings, "phase.redis_slow.gate.p99_ratio", "chat")
    assert gate.verdict is FindingVerdict.REGRESSION
    assert gate.candidate is not None
    assert gate.baseline is not None
    assert gate.delta == pytest.approx(gate.candidate / gate.baseline - 1)
    assert 2.5 < gate.candidate / gate.baseline < 3.5
    assert "limit 2x" in gate.detail
    loose = replace(
        three_times, phases=(replace(three_times.phases[0], params={"max_p99_ratio": 4.0}),)
    )
    gate = only(analyse(loose, None, TH).findings, "phase.redis_slow.gate.p99_ratio", "chat")
    assert gate.verdict is FindingVerdict.UNCHANGED


def test_a_failed_gate_makes_the_run_a_regression_even_without_baseline() -> None:
    data = scale_latency(
        run(2, "redis_slow", max_p99_ratio=2.0), 3.0, columns=ALL, from_s=START, until_s=END
    )
    result = analyse(data, None, TH)
    assert result.verdict is Verdict.REGRESSION
    assert result.reason.startswith("phase.redis_slow.gate.p99_ratio of chat")
    calm = analyse(run(2, "redis_slow", max_p99_ratio=2.0), None, TH)
    assert calm.verdict is Verdict.NO_BASELINE


def test_error_rate_and_recovery_gates() -> None:
    data = run(3, "redis_down", max_error_rate=0.05, max_recovery=60.0)
    data = add_errors(data, 0.2, from_s=START, until_s=END, seed=3)
    data = scale_latency(data, 2.0, columns=ALL, from_s=START, until_s=END + 240)
    findings = analyse(data, None, TH).findings
    errors = only(findings, "phase.redis_down.gate.error_rate")
    assert errors.verdict is FindingVerdict.REGRESSION
    assert errors.candidate is not None
    assert 15.0 < errors.candidate < 25.0  # percent
    recovery = only(findings, "phase.redis_down.gate.recovery")
    assert recovery.verdict is FindingVerdict.REGRESSION
    assert recovery.candidate is not None
    assert recovery.candidate > 200.0
    fine = analyse(run(3, "redis_down", max_error_rate=0.05, max_recovery=60.0), None, TH)
    assert (
        only(fine.findings, "phase.redis_down.gate.error_rate").verdict is FindingVerdict.UNCHANGED
    )
    assert only(fine.findings, "phase.redis_down.gate.recovery").verdict is FindingVerdict.UNCHANGED


def test_no_thresholds_no_gates() -> None:
    findings = analyse(run(4, "provider_slow"), None, TH).findings
    assert not [f for f in findings if ".gate." in f.metric]


def control_plane_run(seed: int, **params: object) -> RunData:
    """Chat and health probes all along; control-plane requests only during the phase, and
    half of them failing (the pressure hurting itself)."""
    data = run(seed, "control_plane", (CHAT, HEALTH, CONTROL), **params)
    windows = data.windows
    control = windows["name"] == CONTROL.name
    inside = (windows["t"] >= START) & (windows["t"] < END)
    windows = windows[~control | inside].copy()
    failing = (windows["name"] == CONTROL.name) & (windows["series"] == "latency")
    windows.loc[failing, "failures"] = windows.loc[failing, "count"] // 2
    return data.with_frames(windows=windows.reset_index(drop=True))


def test_control_plane_requests_are_not_the_data_planes_errors() -> None:
    findings = analyse(control_plane_run(5, max_error_rate=0.01), None, TH).findings
    impact = only(findings, "phase.control_plane.impact.error_rate")
    assert impact.candidate is not None
    assert impact.candidate < 1.0  # percent: the control plane's 50 % is not in it
    assert only(findings, "phase.control_plane.gate.error_rate").verdict is FindingVerdict.UNCHANGED
    phase_names = {f.name for f in findings if f.metric.startswith("phase.")}
    assert not any(n.startswith("control:") for n in phase_names)


def test_health_probes_under_pressure_compared_with_the_baseline() -> None:
    base = control_plane_run(6)
    cand = scale_latency(
        control_plane_run(7), 8.0, columns=ALL, names=[HEALTH.name], from_s=START, until_s=END
    )
    result = analyse(cand, base, TH)
    same = only(result.findings, "phase.control_plane.health_p99", HEALTH.name)
    assert same.verdict is FindingVerdict.REGRESSION
    impact = only(result.findings, "phase.control_plane.impact.health_p99", HEALTH.name)
    assert impact.delta is not None
    assert impact.delta > 3.0
    assert result.verdict is Verdict.REGRESSION
    alike = analyse(control_plane_run(8), base, TH)
    health = only(alike.findings, "phase.control_plane.health_p99", HEALTH.name)
    assert health.verdict is not FindingVerdict.REGRESSION


def test_health_gate_counts_failed_probes_as_too_slow() -> None:
    data = control_plane_run(9, max_health_p99=1.0)  # p99 of ~5 ms is far below 1 s
    assert (
        only(
            analyse(data, None, TH).findings, "phase.control_plane.gate.health_p99", "health:*"
        ).verdict
        is FindingVerdict.UNCHANGED
    )
    windows = data.windows.copy()
    probes = (windows["name"] == HEALTH.name) & (windows["t"] >= START) & (windows["t"] < END)
    windows.loc[probes & (windows["series"] == "latency"), "failures"] = 1  # 1 in ~10 fails
    failing = data.with_frames(windows=windows)
    gate = only(
        analyse(failing, None, TH).findings, "phase.control_plane.gate.health_p99", "health:*"
    )
    assert gate.verdict is FindingVerdict.REGRESSION
    assert "failed" in gate.detail


def test_health_gate_without_probes_is_inconclusive() -> None:
    data = run(10, "control_plane", max_health_p99=1.0)  # chat only: nobody probes health
    gate = only(analyse(data, None, TH).findings, "phase.control_plane.gate.health_p99", "health:*")
    assert gate.verdict is FindingVerdict.INCONCLUSIVE
    assert "no health probes" in gate.detail


def test_p99_ratio_gate_is_per_request_name() -> None:
    stream = Endpoint("chat_stream", 5.0, 400.0, 0.30, streaming=True)
    data = run(11, "redis_slow", (CHAT, stream), max_p99_ratio=2.0)
    # only the plain calls slow down; the streams' larger p99 must not hide them
    data = scale_latency(data, 3.0, columns=ALL, names=["chat"], from_s=START, until_s=END)
    findings = analyse(data, None, TH).findings
    chat = only(findings, "phase.redis_slow.gate.p99_ratio", "chat")
    streamed = only(findings, "phase.redis_slow.gate.p99_ratio", "chat_stream")
    assert chat.verdict is FindingVerdict.REGRESSION
    assert streamed.verdict is FindingVerdict.UNCHANGED
