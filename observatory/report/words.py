"""Findings as the sentences a person reads, with their numbers and onset.

The report's banner and the demo's summary say the same thing the same way: "p99 latency
of chat: 110 ms -> 135 ms (+23.1 %, 95 % interval [+18.0 %, +29.3 %]), since 1m5s into the
run"; the whole run is "all requests", never ``*`` (analysis.labels names both).
"""

from __future__ import annotations

from collections.abc import Sequence

from observatory.analysis.labels import subject
from observatory.analysis.verdict import BASELINE_FREE, describe
from observatory.domain import Finding, FindingVerdict
from observatory.durations import format_duration
from observatory.report.findings import MISSING, delta, delta_unit, interval, number, sort_findings

SLOPES = ("memory_leak", "memory_slope")
# What a reader needs first (sort_findings keeps the size order within each).
SERIOUS = (
    ("crash",),
    ("new_failure", "error_rate", "error_ceiling", "change.error", "drift.error"),
    ("memory",),
)
# Findings whose detail says more than their numbers (no baseline value to compare with).
DETAIL_FIRST = ("change.", "drift.", "error_ceiling", "crash", "memory_leak", "new_failure")


def change_text(f: Finding) -> str:
    """Baseline -> candidate value with the change and its interval, or the detail."""
    if f.metric in SLOPES and f.candidate is not None:
        return slope_text(f)
    if f.metric.startswith(DETAIL_FIRST) or f.delta is None:
        return f.detail or str(f.verdict)
    value_unit = "%" if f.unit == "pp" else f.unit
    values = f"{number(f.baseline, value_unit)} -> {number(f.candidate, value_unit)}"
    return f"{values} ({change_of(f)})"


def slope_text(f: Finding) -> str:
    """Like "grows 54 MB/h [53.6, 54.8] vs 26 MB/h in the baseline; limit +10 MB/h"."""
    text = describe(f).removeprefix("gateway memory ")
    if f.metric == "memory_slope" and f.delta is not None:
        text = text.replace(" in the baseline", f" in the baseline ({change_of(f)})", 1)
    return text


def change_of(f: Finding) -> str:
    """The change with its interval: "+23.1 %, 95 % interval [+18.0 %, +29.3 %]"."""
    spread = interval(f.ci_low, f.ci_high, delta_unit(f))
    where = "" if spread == MISSING else f", 95 % interval {spread}"
    return f"{delta(f.delta, delta_unit(f))}{where}"


def sentence(f: Finding) -> str:
    """One line for a finding, with its onset when it has one."""
    since = "" if f.at_s is None else f", since {format_duration(f.at_s)} into the run"
    if f.metric in SLOPES and f.candidate is not None:
        return f"gateway memory {slope_text(f)}{since}"
    return f"{subject(f.metric, f.name)}: {change_text(f)}{since}"


def top_findings(findings: Sequence[Finding], limit: int = 3, reason: str = "") -> list[str]:
    """What the run is about: its regressions, else its inconclusive comparisons.

    A finding the verdict's ``reason`` already says in the same words is left out.

    The most serious first: a crash, failures, memory, then speed; within each, the
    comparisons with the baseline before the checks of the run alone.
    """
    for verdict in (FindingVerdict.REGRESSION, FindingVerdict.INCONCLUSIVE):
        chosen = [f for f in sort_findings(findings) if f.verdict == verdict]
        if verdict == FindingVerdict.INCONCLUSIVE:
            # what could not be decided, with its numbers (without, its detail restates
            # why the run is inconclusive, which the reason already says)
            chosen = [f for f in chosen if not f.metric.startswith(BASELINE_FREE)]
            chosen = [f for f in chosen if f.candidate is not None] or chosen
        if chosen:
            lines = [sentence(f) for f in sorted(chosen, key=_seriousness)]
            return [line for line in lines if not reason.startswith(line)][:limit]
    return []


def _seriousness(f: Finding) -> tuple[int, int]:
    rank = next((i for i, ps in enumerate(SERIOUS) if f.metric.startswith(ps)), len(SERIOUS))
    return rank, 1 if f.metric.startswith(("drift.", "change.")) else 0
