"""New failure signatures: an error the candidate shows and its baseline never did.

A signature is (category, normalised message) (``observatory.signature``). One the
candidate shows at least ``k`` times on a request name, in its steady windows (those set
aside for a busy host included), while the baseline never shows it on any name in any
window, is a regression of its own: a new way of failing, however rare. ``k`` is
``MIN_COUNT``, raised when the candidate served more requests than the baseline, so that
seeing the baseline share of ``k`` occurrences go to the candidate alone stays below
``ALPHA`` ((n_c / (n_b + n_c))^k <= ALPHA). Without a baseline nothing is new.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from observatory.analysis.metrics import RunView, latency_rows
from observatory.analysis.rundata import RunData
from observatory.domain import Finding, FindingVerdict, Series
from observatory.durations import format_duration
from observatory.signature import OVERFLOW

METRIC = "new_failure"
MIN_COUNT = 5
ALPHA = 0.05
UNKNOWN = ("", OVERFLOW)


@dataclass(frozen=True)
class NewFailure:
    name: str
    category: str
    message: str  # the signature
    count: int
    first_s: float
    last_s: float  # end of the last window showing it


def min_count(base_requests: float, cand_requests: float) -> int:
    """The fewest occurrences that count as new, given both runs' requests."""
    share = cand_requests / (base_requests + cand_requests)
    if share <= 0:
        return MIN_COUNT
    return max(MIN_COUNT, math.ceil(math.log(ALPHA) / math.log(share)))


def new_failures(cand: RunView, base: RunData) -> list[NewFailure]:
    """Signatures of ``cand``'s steady windows the baseline never showed, at least k times."""
    known = base.errors
    if (known["message"].isin(UNKNOWN) & (known["count"] > 0)).any():
        return []  # a failure of the baseline we cannot name could be any signature
    seen = set(zip(known["category"], known["message"], strict=True))
    steady = set(latency_rows(cand, "*")["t"])
    errors = cand.data.errors
    errors = errors[errors["t"].isin(steady) & ~errors["message"].isin(UNKNOWN)]
    base_requests = float(base.windows.loc[base.windows["series"] == Series.LATENCY, "count"].sum())
    if base_requests <= 0:
        return []
    k = min_count(base_requests, float(latency_rows(cand, "*")["count"].sum()))
    found = []
    for (name, category, message), rows in errors.groupby(["name", "category", "message"]):
        count = int(rows["count"].sum())
        if (category, message) in seen or count < k:
            continue
        first, last = float(rows["t"].min()), float(rows["t"].max()) + cand.data.window_s
        found.append(NewFailure(str(name), str(category), str(message), count, first, last))
    return sorted(found, key=lambda f: -f.count)


def new_failure_findings(cand: RunView, base: RunData | None) -> list[Finding]:
    """A regression finding per new signature (none without a baseline)."""
    if base is None:
        return []
    return [_finding(f) for f in new_failures(cand, base)]


_INNER = re.compile(r'"message"\s*:\s*"((?:[^"\\]|\\.){8,})"')
_LINE_BREAK = re.compile(r"\\n|\n")  # escaped in a JSON body, or real


def shown_message(message: str) -> str:
    """The message a human reads: the body's own ``"message"`` when it has one, first line."""
    inner = _INNER.search(message)
    text = inner.group(1) if inner else message
    return _LINE_BREAK.split(text, maxsplit=1)[0].strip()


def _finding(new: NewFailure) -> Finding:
    span = f"at {format_duration(new.first_s)}"
    if new.last_s - new.first_s > 60:
        span = f"from {format_duration(new.first_s)} to {format_duration(new.last_s)}"
    return Finding(
        metric=METRIC,
        name=new.name,
        verdict=FindingVerdict.REGRESSION,
        baseline=0.0,
        candidate=float(new.count),
        delta=None,
        ci_low=None,
        ci_high=None,
        p_value=None,
        threshold=None,
        unit="",
        detail=f'new error "{shown_message(new.message)}" ({new.count}x, {new.category}) {span}; '
        "never in the baseline",
        at_s=new.first_s,
    )
