"""Block Kit payloads: one short message per verdict worth telling.

The message answers, in this order: what happened (verdict line), what regressed and by how
much, since when in the run, which build against which baseline, and where the evidence is
(a button to the HTML report). Blocks are built with slack-sdk's models, whose ``to_dict``
checks Slack's limits, so a payload that Slack would refuse is never written to the outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from observatory.domain import Finding, Verdict
from observatory.durations import format_duration
from observatory.errors import NotifyError
from observatory.notify.alert import AlertDraft, AlertKind, dedupe_key
from observatory.settings import SlackSettings

NEW_FAILURE = "new_failure"  # analysis.failures.METRIC (notify does not import analysis)
MAX_FINDINGS = 3  # the report has the rest; a Slack message is read in five seconds

# Slack's documented limits (header text 150, section text 3000, field 2000, button text 75).
_HEADER_MAX = 150
_SECTION_MAX = 3000
_FIELD_MAX = 2000
_FALLBACK_MAX = 500

_TITLES = {
    AlertKind.REGRESSION: (":red_circle:", "Regression"),
    AlertKind.CRASH: (":boom:", "Gateway crashed"),
    AlertKind.ABORT: (":octagonal_sign:", "Run aborted"),
    AlertKind.INCONCLUSIVE: (":grey_question:", "Inconclusive"),
    AlertKind.PASS: (":white_check_mark:", "Passed"),
    AlertKind.ERROR: (":warning:", "Observatory error"),
}


@dataclass(frozen=True, slots=True)
class AlertContext:
    """Everything a message says about one finished run."""

    run_id: int
    scenario: str
    kind: AlertKind
    verdict: Verdict | None  # None when the observatory itself failed (kind error)
    reason: str  # one line: why this verdict
    build_name: str
    build_version: str
    report_url: str  # see report_url()
    build_id: int | None = None
    baseline_name: str | None = None
    baseline_version: str | None = None
    baseline_run_id: int | None = None
    findings: Sequence[Finding] = field(default=())  # most important first
    duration_s: float | None = None  # how long the run actually lasted
    end_reason: str | None = None


def report_url(public_base_url: str, run_id: int) -> str:
    """The one URL shape of a run's HTML report (served by the service)."""
    return f"{public_base_url.rstrip('/')}/runs/{run_id}/report"


def kind_for(
    verdict: Verdict | None, *, crashed: bool = False, aborted: bool = False, errored: bool = False
) -> AlertKind:
    """The alert kind of a finished run; our own failure wins, then a crash, then an abort."""
    if errored or verdict is None:
        return AlertKind.ERROR
    if crashed:
        return AlertKind.CRASH
    if aborted:
        return AlertKind.ABORT
    if verdict == Verdict.REGRESSION:
        return AlertKind.REGRESSION
    if verdict == Verdict.PASS:
        return AlertKind.PASS
    return AlertKind.INCONCLUSIVE


def build_alert(ctx: AlertContext, settings: SlackSettings) -> AlertDraft | None:
    """The outbox draft for ``ctx``, or None when ``settings.notify_on`` leaves this kind out."""
    if ctx.kind.value not in settings.notify_on:
        return None
    return AlertDraft(
        dedupe_key=dedupe_key(ctx.run_id, ctx.kind),
        kind=ctx.kind,
        run_id=ctx.run_id,
        build_id=ctx.build_id,
        text=fallback_text(ctx),
        blocks=tuple(render_blocks(ctx)),
    )


def render_blocks(ctx: AlertContext) -> list[dict[str, Any]]:
    """Block Kit blocks for ``ctx``, checked against Slack's limits by slack-sdk."""
    blocks: list[Block] = [_header(ctx), _section(_escape(ctx.reason) or "(no reason given)")]
    if ctx.findings:
        blocks.append(_section(findings_text(ctx.findings)))
    blocks.append(_facts(ctx))
    blocks.append(_report_button(ctx))
    blocks.append(_context(ctx))
    try:
        return [block.to_dict() for block in blocks]
    except SlackObjectFormationError as exc:
        raise NotifyError(f"alert for run {ctx.run_id} is not valid Block Kit: {exc}") from exc


def sample_payload(public_base_url: str) -> dict[str, Any]:
    """The sample message of ``observatory alerts test``."""
    text = "Observatory test message: verdict alerts will arrive here."
    blocks: list[Block] = [
        _section(f":satellite_antenna: *{text}*"),
        ContextBlock(
            elements=[MarkdownTextObject(text=f"reports: <{public_base_url}|observatory>")]
        ),
    ]
    return {"text": text, "blocks": [block.to_dict() for block in blocks]}


def fallback_text(ctx: AlertContext) -> str:
    """The notification text (shown where blocks are not: phone banners, screen readers)."""
    _, title = _TITLES[ctx.kind]
    parts = [f"{title}: {_build_line(ctx)} on {ctx.scenario} (run #{ctx.run_id})"]
    if ctx.reason:
        parts.append(ctx.reason)  # the same line as the report and `runs list`
    elif ctx.findings:
        parts.append(_plain_finding(ctx.findings[0]))
    parts.append(ctx.report_url)
    return _clip(" - ".join(parts), _FALLBACK_MAX)


def findings_text(findings: Sequence[Finding]) -> str:
    lines = [f"• {describe_finding(f)}" for f in findings[:MAX_FINDINGS]]
    if len(findings) > MAX_FINDINGS:
        lines.append(f"_+{len(findings) - MAX_FINDINGS} more in the report_")
    return _clip("\n".join(lines), _SECTION_MAX)


def describe_finding(finding: Finding) -> str:
    """``*latency_p99* `chat`: 412 ms → 487 ms (+18.2 %), since 1h1m into the run``."""
    where = "" if finding.name == "*" else f" `{_escape(finding.name)}`"
    if finding.metric == NEW_FAILURE:
        what = finding.detail.split("; never in the baseline")[0]
        return f"*{_escape(finding.metric)}*{where}: {_escape(what)}"
    text = f"*{_escape(finding.metric)}*{where}: {_escape(_change(finding))}"
    if finding.metric.startswith("error_rate") and finding.detail:
        text += f" · {_escape(finding.detail.split('; side by side')[0])}"  # counts, bursts
    if finding.at_s is not None:
        text += f", since {format_duration(finding.at_s)} into the run"
    return text


def _plain_finding(finding: Finding) -> str:
    since = "" if finding.at_s is None else f" since {format_duration(finding.at_s)}"
    return f"{finding.metric} {_change(finding)}{since}"


def _change(finding: Finding) -> str:
    unit = f" {finding.unit}" if finding.unit else ""
    base, cand = finding.baseline, finding.candidate
    if base is not None and cand is not None:
        text = f"{_number(base)}{unit} → {_number(cand)}{unit}"
        # Relative change from the values themselves: the delta field may be absolute for
        # some units, the values never lie.
        return text + (f" ({_relative(cand / base)})" if base else "")
    if cand is not None:
        return f"{_number(cand)}{unit}"
    if finding.delta is not None:
        return f"{finding.delta:+.1%}"
    return finding.detail or finding.verdict.value


def _relative(ratio: float) -> str:
    # "+3300%" reads worse than "x34" (with a multiplication sign) past a tripling.
    return f"\u00d7{ratio:.3g}" if ratio >= 3 else f"{ratio - 1:+.1%}"


def _number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _header(ctx: AlertContext) -> HeaderBlock:
    emoji, title = _TITLES[ctx.kind]
    text = f"{emoji} {title}: {ctx.build_name} {ctx.build_version} · {ctx.scenario}"
    return HeaderBlock(text=PlainTextObject(text=_clip(text, _HEADER_MAX), emoji=True))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_clip(text, _SECTION_MAX)))


def _facts(ctx: AlertContext) -> SectionBlock:
    fields = [
        f"*Candidate*\n{_escape(ctx.build_name)} {_escape(ctx.build_version)}",
        f"*Baseline*\n{_escape(_baseline_line(ctx))}",
        f"*Run*\n#{ctx.run_id} · {_escape(ctx.scenario)}",
        f"*Duration*\n{_escape(_duration_line(ctx))}",
    ]
    return SectionBlock(fields=[MarkdownTextObject(text=_clip(f, _FIELD_MAX)) for f in fields])


def _report_button(ctx: AlertContext) -> ActionsBlock:
    button = ButtonElement(text="Open report", url=ctx.report_url, action_id="open_report")
    return ActionsBlock(elements=[button])


def _context(ctx: AlertContext) -> ContextBlock:
    verdict = ctx.verdict.value if ctx.verdict is not None else "none"
    text = f"observatory · run #{ctx.run_id} · verdict {verdict} · <{ctx.report_url}|report>"
    return ContextBlock(elements=[MarkdownTextObject(text=_clip(text, _SECTION_MAX))])


def _build_line(ctx: AlertContext) -> str:
    line = f"{ctx.build_name} {ctx.build_version}"
    if ctx.baseline_name is not None:
        line += f" vs {ctx.baseline_name} {ctx.baseline_version or ''}".rstrip()
    return line


def _baseline_line(ctx: AlertContext) -> str:
    if ctx.baseline_name is None:
        return "none"
    line = f"{ctx.baseline_name} {ctx.baseline_version or ''}".rstrip()
    return line + (f" (run #{ctx.baseline_run_id})" if ctx.baseline_run_id is not None else "")


def _duration_line(ctx: AlertContext) -> str:
    line = "-" if ctx.duration_s is None else format_duration(ctx.duration_s)
    return line + (f" ({ctx.end_reason})" if ctx.end_reason else "")


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
