"""Block Kit payloads: golden files, slack-sdk model validation, what the message says.

Regenerate the golden files after an intended change of the message:
    OBSERVATORY_UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/notify/test_notify_payload.py
and review the diff of tests/notify/golden/.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from slack_fake import context
from slack_sdk.models.blocks import Block

from observatory.domain import Finding, FindingVerdict, Verdict
from observatory.notify.alert import AlertKind
from observatory.notify.payload import (
    AlertContext,
    build_alert,
    describe_finding,
    kind_for,
    render_blocks,
    report_url,
    sample_payload,
)
from observatory.settings import SlackSettings

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("OBSERVATORY_UPDATE_GOLDEN") == "1"
ALL_KINDS = SlackSettings(notify_on=[k.value for k in AlertKind])


def _finding(metric: str, base: float | None, cand: float | None, **kw: Any) -> Finding:
    return Finding(
        metric=metric,
        name=kw.pop("name", "chat"),
        verdict=kw.pop("verdict", FindingVerdict.REGRESSION),
        baseline=base,
        candidate=cand,
        delta=kw.pop("delta", None),
        ci_low=None,
        ci_high=None,
        p_value=None,
        threshold=None,
        **kw,
    )


def _contexts() -> dict[str, AlertContext]:
    regression = replace(
        context(42, 7),
        findings=(
            _finding("latency_p99", 412.0, 487.0, unit="ms", at_s=3660.0),
            _finding("error_rate", 0.001, 0.034, name="*", at_s=5400.0, detail="errors began"),
            _finding("memory_slope", 0.4, 21.5, name="*", unit="MB/h"),
            _finding("overhead_p50", 2.1, 2.6, unit="ms"),
        ),
    )
    crash = replace(
        context(43, 7, AlertKind.CRASH),
        reason="gateway process exited with code -9 at 2h14m",
        findings=(),
        duration_s=8040.0,
        end_reason="gateway crashed",
    )
    no_baseline = replace(
        context(44, 8, AlertKind.INCONCLUSIVE),
        verdict=Verdict.NO_BASELINE,
        reason="no eligible baseline on this host",
        baseline_name=None,
        baseline_version=None,
        baseline_run_id=None,
        findings=(),
    )
    passed = replace(
        context(45, 8, AlertKind.PASS),
        verdict=Verdict.PASS,
        reason="all 14 metrics unchanged",
        findings=(),
    )
    error = replace(
        context(46, None, AlertKind.ERROR),
        verdict=None,
        reason="load generator failed: locust exited with code 1 <stderr: ImportError & more>",
        findings=(),
        duration_s=12.0,
        end_reason="error",
    )
    abort = replace(
        context(47, 7, AlertKind.ABORT),
        reason="error rate above 20 % for 2m: run ended early",
        findings=(_finding("error_rate", 0.001, 0.41, name="*", at_s=600.0),),
        duration_s=720.0,
        end_reason="aborted: sustained errors",
    )
    bursts = replace(
        context(48, 7),
        reason="chat:gpt-4o: 150 of 406 requests failed (37 %) vs 0 of 398 in the baseline, "
        'in 3 bursts of ~30s every ~1m5s, first at 1m10s; new error "Cannot send a request, as '
        'the client has been closed" (150x, http_500) from 1m10s to 3m30s; latency not judged: '
        "other processes busy on the host in 61% of steady windows",
        findings=(
            _finding(
                "error_rate",
                0.0,
                36.9,
                name="chat:gpt-4o",
                unit="%",
                detail="150 of 406 requests failed (37 %) vs 0 of 398 in the baseline, "
                "in 3 bursts of ~30s every ~1m5s, first at 1m10s",
            ),
            _finding(
                "new_failure",
                0.0,
                150.0,
                name="chat:gpt-4o",
                detail='new error "Cannot send a request, as the client has been closed" '
                "(150x, http_500) from 1m10s to 3m30s; never in the baseline",
                at_s=70.0,
            ),
        ),
        duration_s=240.0,
    )
    return {
        "bursts": bursts,
        "regression": regression,
        "crash": crash,
        "no_baseline": no_baseline,
        "pass": passed,
        "error": error,
        "abort": abort,
    }


@pytest.mark.parametrize("name", sorted(_contexts()))
def test_payload_matches_its_golden_file(name: str) -> None:
    draft = build_alert(_contexts()[name], ALL_KINDS)
    assert draft is not None
    rendered = json.dumps(draft.payload, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"missing {path}; run with OBSERVATORY_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted(_contexts()))
def test_payload_parses_and_validates_as_block_kit(name: str) -> None:
    draft = build_alert(_contexts()[name], ALL_KINDS)
    assert draft is not None
    for block in draft.payload["blocks"]:
        model = Block.parse(block)
        assert model is not None, block
        model.validate_json()  # raises SlackObjectFormationError on a limit Slack enforces
        assert model.to_dict() == block
    assert next(b["type"] for b in draft.payload["blocks"]) == "header"
    assert draft.text
    assert len(draft.text) <= 500


def test_regression_message_says_what_by_how_much_since_when_and_links_the_report() -> None:
    draft = build_alert(_contexts()["regression"], ALL_KINDS)
    assert draft is not None
    body = json.dumps(draft.payload, ensure_ascii=False)
    assert "latency_p99" in body
    assert "412 ms → 487 ms (+18.2%)" in body
    assert "since 1h1m into the run" in body
    assert "litellm-1.82.0 1.82.0 (run #1)" in body  # the baseline
    assert "_+1 more in the report_" in body  # 4 findings, 3 shown
    buttons = [b for b in draft.payload["blocks"] if b["type"] == "actions"]
    assert buttons[0]["elements"][0]["url"] == "http://127.0.0.1:8700/runs/42/report"
    assert draft.dedupe_key == "run:42:regression"
    assert "run #42" in draft.text
    assert "http://127.0.0.1:8700/runs/42/report" in draft.text


def test_error_bursts_and_new_failures_read_as_the_reason_says() -> None:
    draft = build_alert(_contexts()["bursts"], ALL_KINDS)
    assert draft is not None
    findings = draft.payload["blocks"][2]["text"]["text"]
    assert "in 3 bursts of ~30s every ~1m5s, first at 1m10s" in findings
    assert '*new_failure* `chat:gpt-4o`: new error "Cannot send a request' in findings
    assert "150 of 406 requests failed (37 %) vs 0 of 398" in draft.text  # the reason line


def test_notify_on_leaves_out_kinds_not_asked_for() -> None:
    default = SlackSettings()
    assert build_alert(_contexts()["pass"], default) is None  # pass is opt-in
    assert build_alert(_contexts()["regression"], default) is not None
    only_crash = SlackSettings(notify_on=["crash"])
    assert build_alert(_contexts()["regression"], only_crash) is None
    assert build_alert(_contexts()["crash"], only_crash) is not None


def test_user_text_is_escaped_and_clipped_to_slack_limits() -> None:
    ctx = replace(
        context(9, 1),
        build_name="evil<!channel>&" + "x" * 300,
        reason="<@U123> " + "y" * 5000,
        scenario="s" * 200,
    )
    blocks = render_blocks(ctx)
    header = blocks[0]["text"]["text"]
    assert len(header) <= 150
    assert header.endswith("…")
    reason = blocks[1]["text"]["text"]
    assert reason.startswith("&lt;@U123&gt;")
    assert len(reason) <= 3000
    assert "<!channel>" not in json.dumps(blocks[2:])
    for block in blocks:
        Block.parse(block).validate_json()  # type: ignore[union-attr]


def test_describe_finding_falls_back_when_values_are_missing() -> None:
    assert describe_finding(_finding("error_rate", None, 0.05, name="*")) == "*error_rate*: 0.05"
    only_delta = _finding("throughput", None, None, delta=-0.12)
    assert describe_finding(only_delta) == "*throughput* `chat`: -12.0%"
    detail = _finding(
        "latency_p99", None, None, detail="not enough windows", verdict=FindingVerdict.INCONCLUSIVE
    )
    assert describe_finding(detail) == "*latency_p99* `chat`: not enough windows"
    zero_base = _finding("late_rate", 0.0, 0.2, name="*")
    assert describe_finding(zero_base) == "*late_rate*: 0 → 0.2"


def test_kind_for_puts_our_own_failure_first_then_crash_then_abort() -> None:
    assert kind_for(None) is AlertKind.ERROR
    assert kind_for(Verdict.REGRESSION, crashed=True, errored=True) is AlertKind.ERROR
    assert kind_for(Verdict.REGRESSION, crashed=True, aborted=True) is AlertKind.CRASH
    assert kind_for(Verdict.REGRESSION, aborted=True) is AlertKind.ABORT
    assert kind_for(Verdict.REGRESSION) is AlertKind.REGRESSION
    assert kind_for(Verdict.PASS) is AlertKind.PASS
    assert kind_for(Verdict.INCONCLUSIVE) is AlertKind.INCONCLUSIVE
    assert kind_for(Verdict.NO_BASELINE) is AlertKind.INCONCLUSIVE


def test_report_url_has_one_shape() -> None:
    assert report_url("https://obs.example.org/", 5) == "https://obs.example.org/runs/5/report"
    assert report_url("http://127.0.0.1:8700", 5) == "http://127.0.0.1:8700/runs/5/report"


def test_sample_message_is_valid_block_kit() -> None:
    payload = sample_payload("http://127.0.0.1:8700")
    assert "test message" in payload["text"]
    for block in payload["blocks"]:
        Block.parse(block).validate_json()  # type: ignore[union-attr]
