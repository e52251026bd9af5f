"""Metric and request names in the words a person reads ("p99 latency", "all requests")."""

from __future__ import annotations

ALL_REQUESTS = "all requests"
LABELS = {
    "latency_p50": "p50 latency",
    "latency_p95": "p95 latency",
    "latency_p99": "p99 latency",
    "ttft_p50": "p50 time to first token",
    "ttft_p99": "p99 time to first token",
    "inter_chunk_p99": "p99 gap between chunks",
    "overhead_p50": "p50 gateway overhead",
    "overhead_p99": "p99 gateway overhead",
    "overhead_header_p50": "p50 gateway overhead (its own header)",
    "overhead_header_p99": "p99 gateway overhead (its own header)",
    "error_rate": "error rate",
    "error_ceiling": "error rate ceiling",
    "late_rate": "late sends",
    "throughput": "throughput",
    "cpu": "gateway CPU",
    "memory_peak": "gateway memory peak",
    "memory_level": "gateway memory level",
    "memory_slope": "gateway memory slope",
    "memory_leak": "gateway memory growth",
    "new_failure": "new failure",
    "crash": "gateway crash",
}


def metric_label(metric: str) -> str:
    """ "latency_p99" -> "p99 latency"; "change.error_rate" -> "step in error rate"."""
    for prefix, words in (("change.", "step in"), ("drift.", "drift of")):
        if metric.startswith(prefix):
            return f"{words} {metric_label(metric.removeprefix(prefix))}"
    if metric.startswith("error_rate."):
        return f"error rate ({metric.removeprefix('error_rate.')})"
    if metric.startswith("phase."):
        return metric  # "phase.redis_slow.gate.p99_ratio": named by the scenario's phases
    return LABELS.get(metric, metric.replace("_", " "))


def subject(metric: str, name: str) -> str:
    """ "p99 latency of chat"; run-wide gateway metrics need no request name."""
    if name == "*" and metric.startswith(("memory", "cpu", "crash")):
        return metric_label(metric)
    return f"{metric_label(metric)} of {request_name(name)}"


def request_name(name: str) -> str:
    """A request name as a person reads it: the whole run ("*") is "all requests"."""
    return ALL_REQUESTS if name == "*" else name
