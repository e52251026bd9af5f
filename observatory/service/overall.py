"""The overall status and verdict of a validation, from its runs. Pure: no I/O.

Priority of the verdict once every run ended: a regression in any candidate wins (exit 1);
then a candidate that ended without a verdict - error, aborted, interrupted - (``error``,
exit 4); then inconclusive or no baseline (exit 3); pass only when every candidate passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from observatory.domain import ExitCode, RunStatus, Verdict


@dataclass(frozen=True, slots=True)
class RunState:
    status: str
    verdict: str | None
    candidate: bool


@dataclass(frozen=True, slots=True)
class Overall:
    status: str  # queued | running | finished
    verdict: str | None  # pass | regression | inconclusive | no_baseline | error
    exit_code: int | None


def overall(runs: Sequence[RunState]) -> Overall:
    statuses = [RunStatus(r.status) for r in runs]
    if not runs or all(s == RunStatus.QUEUED for s in statuses):
        return Overall("queued", None, None)
    if not all(s.finished for s in statuses):
        return Overall("running", None, None)
    verdict = _verdict([r for r in runs if r.candidate])
    return Overall("finished", verdict, _exit_code(verdict))


def _verdict(candidates: Sequence[RunState]) -> str:
    verdicts = {c.verdict for c in candidates}
    if Verdict.REGRESSION in verdicts:
        return Verdict.REGRESSION
    if not candidates or any(c.status != RunStatus.DONE or c.verdict is None for c in candidates):
        return "error"
    for weaker in (Verdict.INCONCLUSIVE, Verdict.NO_BASELINE):
        if weaker in verdicts:
            return weaker
    return Verdict.PASS


def _exit_code(verdict: str) -> int:
    if verdict == "error":
        return int(ExitCode.INTERNAL)
    return int(Verdict(verdict).exit_code)
