"""A Block Kit payload as the text a channel shows (what `observatory demo` prints)."""

from __future__ import annotations

from dataclasses import replace

from slack_fake import context

from observatory.notify.payload import build_alert
from observatory.notify.text import channel_text, plain
from observatory.settings import SlackSettings

ALL_KINDS = SlackSettings(
    notify_on=["regression", "crash", "abort", "inconclusive", "pass", "error"]
)


def test_a_regression_reads_as_the_channel_shows_it() -> None:
    ctx = replace(context(42, 7), reason="p99 latency of chat +18.2 % (412 -> 487 ms)")
    draft = build_alert(ctx, ALL_KINDS)
    assert draft is not None
    text = channel_text({"text": draft.text, "blocks": list(draft.blocks)})
    lines = text.splitlines()
    assert lines[0] == "\N{LARGE RED CIRCLE} Regression: litellm-1.83.0 1.83.0 · chat-steady"
    assert lines[1] == "p99 latency of chat +18.2 % (412 -> 487 ms)"  # "->" unescaped
    assert lines[2] == "• latency_p99 `chat`: 412 ms → 487 ms (+18.2%), since 1h1m into the run"
    assert "Candidate: litellm-1.83.0 1.83.0 · Baseline: " in text
    assert "[Open report] http://127.0.0.1:8700/runs/42/report" in lines
    assert lines[-1] == (
        "observatory · run #42 · verdict regression · report (http://127.0.0.1:8700/runs/42/report)"
    )
    assert "*" not in text  # no mrkdwn marks left
    assert "&gt;" not in text
    assert len(lines) <= 10  # a message read in five seconds


def test_markup_is_undone_and_the_fallback_stands_in_for_missing_blocks() -> None:
    assert plain("*bold* and _it_ and <https://x.test/a|the report> &lt;b&gt;") == (
        "bold and it and the report (https://x.test/a) <b>"
    )
    assert plain("a snake_case_name stays") == "a snake_case_name stays"
    assert channel_text({"text": "only *text*"}) == "only text"
