"""What an alert is, before and independent of how it is delivered. No I/O, no slack-sdk."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class AlertKind(enum.StrEnum):
    """Why a run is worth telling; the values are those of ``slack.notify_on``."""

    REGRESSION = "regression"
    CRASH = "crash"  # the gateway died: a regression, told as such
    ABORT = "abort"  # a catastrophic condition ended the run early
    INCONCLUSIVE = "inconclusive"  # includes "no baseline": it never passes silently
    PASS = "pass"  # noqa: S105 - not a password
    ERROR = "error"  # the observatory's own parts failed, not the candidate


@dataclass(frozen=True, slots=True)
class AlertDraft:
    """An alert ready for the outbox: rendered once, delivered as many times as it takes."""

    dedupe_key: str
    kind: AlertKind
    run_id: int
    build_id: int | None
    text: str  # notification / fallback text
    blocks: tuple[dict[str, Any], ...] = field(default=())

    @property
    def payload(self) -> dict[str, Any]:
        """The message body stored in the outbox (``text`` + ``blocks``)."""
        return {"text": self.text, "blocks": [dict(block) for block in self.blocks]}


def dedupe_key(run_id: int, kind: AlertKind) -> str:
    """One alert per run and kind: re-running the pipeline's last step never duplicates it."""
    return f"run:{run_id}:{kind.value}"
