"""Was the host as fast during the candidate as during its baseline?

A VM's cores do not run at one speed: the hypervisor's other guests, frequency scaling and
thermal limits change how much work a CPU second does, and none of it shows in the guest
as busy neighbours. A CPU-bound gateway at half a core amplifies it through queueing:
on twelve real LiteLLM runs on one host, the load generator's CPU per request moved 2.1 ->
2.9 ms over an hour with nothing else running, the gateway's with it (17.4 -> 25.8 ms), and
its overhead p99 by up to 69 %.

The load generator does the same work for every request of a scenario, so its CPU time per
request is the run's measure of host speed. When the candidate's differs from the
baseline's by more than ``thresholds.host_speed`` (a share), the two runs did not measure
on the same machine and their comparison is inconclusive. A candidate whose responses made
the generator work harder (bigger bodies, many more chunks) is called inconclusive too, not
passed: a human looks at it.
"""

from __future__ import annotations

from observatory.analysis.rundata import RunData
from observatory.domain import Series

LOADGEN = "loadgen"


def cpu_per_request_ms(data: RunData) -> float | None:
    """The load generator's CPU milliseconds per request after warm-up (None: not measured)."""
    res = data.resources
    cpu = res.loc[(res["role"] == LOADGEN) & (res["t"] >= data.warmup_s), "cpu_percent"].dropna()
    w = data.windows
    latency = w[(w["series"] == Series.LATENCY) & (w["t"] >= data.warmup_s)]
    seconds = latency["t"].nunique() * data.window_s
    requests = float(latency["count"].sum())
    if cpu.empty or requests <= 0 or seconds <= 0:
        return None
    return float(cpu.mean()) / 100.0 / (requests / seconds) * 1000.0


def speed_difference(candidate: RunData, baseline: RunData, tolerance: float | None) -> str | None:
    """Why the host's speed makes the two runs incomparable; None when it does not."""
    if tolerance is None:
        return None
    cand, base = cpu_per_request_ms(candidate), cpu_per_request_ms(baseline)
    if cand is None or base is None or base <= 0:
        return None
    change = cand / base - 1.0
    if abs(change) <= tolerance:
        return None
    return (
        f"host speed differed: the load generator used {cand:.3g} ms of CPU per request, "
        f"{change:+.0%} against the baseline's {base:.3g} ms"
    )
