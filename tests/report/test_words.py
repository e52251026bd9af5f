"""Findings in plain words: sentences, the top findings' order, the card, the groups."""

from __future__ import annotations

from observatory.analysis.verdict import describe
from observatory.domain import Finding, FindingVerdict
from observatory.report.findings import group_findings
from observatory.report.headline import headline
from observatory.report.words import sentence, top_findings

R, U, NO = FindingVerdict.REGRESSION, FindingVerdict.UNCHANGED, FindingVerdict.INCONCLUSIVE


def _f(metric: str, name: str, verdict: FindingVerdict, *values: float | None, **kw: object):
    base, cand, delta, low, high, threshold = (*values, *([None] * (6 - len(values))))
    return Finding(metric, name, verdict, base, cand, delta, low, high, None, threshold, **kw)  # type: ignore[arg-type]


LEAK = _f("memory_leak", "*", R, 26.0, 54.2, 54.2, 53.6, 54.8, 10.0, unit="MB/h")
P99 = _f("latency_p99", "chat", R, 110.0, 135.0, 0.231, 0.18, 0.29, 0.1, unit="ms")
ERRORS = _f("error_rate", "chat", R, 0.0, 37.0, 37.0, 16.7, 57.8, 0.5, unit="%", at_s=65.0)
DRIFT = _f("drift.error_rate", "*", R, 0.07, 14.8, 14.7, None, None, 0.5, unit="pp",
           detail="last 6 min vs first 6 min of steady state")  # fmt: skip


def test_a_leak_reads_as_growth_with_its_interval_baseline_and_limit() -> None:
    expected = "gateway memory grows 54.2 MB/h [53.6, 54.8] vs 26 MB/h in the baseline"
    assert describe(LEAK) == expected + "; limit +10 MB/h"
    assert sentence(LEAK) == describe(LEAK)
    peak = _f("memory_peak", "*", NO, 275.3, 346.2, 0.258, unit="MB")
    assert describe(peak) == "gateway memory peak +25.8 % (275.3 -> 346.2 MB)"  # no "of *"


def test_sentences_say_values_change_interval_and_onset() -> None:
    assert sentence(ERRORS) == (
        "error rate of chat: 0 % -> 37 % (+37 pp, 95 % interval [+16.7 pp, +57.8 pp]), "
        "since 1m5s into the run"
    )
    assert sentence(P99) == (
        "p99 latency of chat: 110 ms -> 135 ms (+23.1 %, 95 % interval [+18.0 %, +29.0 %])"
    )
    assert sentence(DRIFT).startswith("drift of error rate of all requests: last 6 min")


def test_top_findings_put_failures_first_then_memory_then_speed() -> None:
    lines = top_findings([P99, DRIFT, LEAK, ERRORS], limit=3)
    assert [line.split(":")[0].split(" grows")[0] for line in lines] == [
        "error rate of chat",
        "drift of error rate of all requests",
        "gateway memory",
    ]
    assert top_findings([_f("cpu", "*", U, 30.0, 31.0, 0.03)]) == []  # nothing to tell
    said = top_findings([LEAK, P99], reason=describe(LEAK) + " (and 1 more)")
    assert said == [sentence(P99)]  # the reason already says the leak


def test_the_card_has_all_requests_first_and_the_gateway_row() -> None:
    card = headline([P99, ERRORS, LEAK, _f("error_ceiling", "*", U, None, 0.1, -0.9, unit="pp")])
    assert [name for name, _ in card.rows] == ["all requests", "chat"]
    everyone, chat = card.rows[0][1], card.rows[1][1]
    assert everyone[2].candidate == "0.1 %"  # without a comparison, the ceiling check
    assert (chat[1].candidate, chat[1].change, chat[1].verdict) == (
        "135 ms",
        "+23.1 %",
        "regression",
    )
    assert card.gateway[1].candidate == "54.2 MB/h"
    assert card.gateway[1].change == "\N{EN DASH}"  # a leak's delta is not a change
    assert card.gateway[0].verdict == ""  # no memory level or peak: not measured


def test_checks_without_enough_data_fold_into_one_line_with_the_reason() -> None:
    thin = "not enough data: last 0 min vs first 0 min"
    drift = [_f("drift.latency_p99", name, NO, detail=thin) for name in ("a", "b")]
    groups = group_findings([P99, *drift])
    assert len(groups.regressions) == 1
    assert groups.inconclusive == []
    assert len(groups.not_judged) == 2
    assert groups.not_judged_why == thin
