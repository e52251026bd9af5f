"""Findings in the words a person reads: metric labels, request names, one-line sentences.

The report's headline, its grouped findings and the demo's summary say the same thing the
same way: "p99 latency of chat: 110 -> 135 ms (+23.1 %, 95 % interval [+18.0 %, +29.3 %]),
since 1m05 into the run"; the whole run is "all requests", never ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence

from observatory.analysis.verdict import BASELINE_FREE
from observatory.domain import Finding, FindingVerdict
from observatory.durations import format_duration
from observatory.report.findings import (
    delta,
    delta_unit,
    interval,
    metric_label,
    number,
    request_name,
    sort_findings,
)

# Findings whose detail says more than their numbers (no baseline value to compare with).
DETAIL_FIRST = ("change.", "drift.", "error_ceiling", "crash", "memory_leak", "new_failure")


def subject(f: Finding) -> str:
    """ "p99 latency of chat"."""
    return f"{metric_label(f.metric)} of {request_name(f.name)}"


def change_text(f: Finding) -> str:
    """ "110 ms -> 135 ms (+23.1 %, 95 % interval [+18.0 %, +29.3 %])", or the detail."""
    if f.metric.startswith(DETAIL_FIRST) or f.delta is None:
        return f.detail or str(f.verdict)
    unit = delta_unit(f)
    value_unit = "%" if f.unit == "pp" else f.unit
    values = f"{number(f.baseline, value_unit)} -> {number(f.candidate, value_unit)}"
    spread = interval(f.ci_low, f.ci_high, unit)
    where = "" if spread == "\N{EN DASH}" else f", 95 % interval {spread}"
    return f"{values} ({delta(f.delta, unit)}{where})"


def sentence(f: Finding) -> str:
    """One line for a finding, with its onset when it has one."""
    since = "" if f.at_s is None else f", since {format_duration(f.at_s)} into the run"
    return f"{subject(f)}: {change_text(f)}{since}"


def top_findings(findings: Sequence[Finding], limit: int = 3) -> list[str]:
    """What the run is about: its regressions, else its inconclusive comparisons."""
    for verdict in (FindingVerdict.REGRESSION, FindingVerdict.INCONCLUSIVE):
        chosen = [f for f in sort_findings(findings) if f.verdict == verdict]
        if verdict == FindingVerdict.INCONCLUSIVE:
            chosen = [f for f in chosen if not f.metric.startswith(BASELINE_FREE)]
        if chosen:
            return [sentence(f) for f in chosen[:limit]]
    return []
