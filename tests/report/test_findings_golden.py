"""Golden test of the findings table: its structure, order and number formats.

After an intended change to the table, regenerate with:
    UPDATE_GOLDEN=1 .venv/bin/pytest -q tests/report/test_findings_golden.py
and review the diff of tests/report/golden/findings_table.html.
"""

from __future__ import annotations

import os
from pathlib import Path

from observatory.domain import Finding, FindingVerdict
from observatory.report.render import render_findings_table

GOLDEN = Path(__file__).parent / "golden" / "findings_table.html"


def _finding(metric: str, name: str, verdict: FindingVerdict, **kw: object) -> Finding:
    fields: dict[str, object] = {
        "baseline": None, "candidate": None, "delta": None, "ci_low": None, "ci_high": None,
        "p_value": None, "threshold": None,
    }  # fmt: skip
    fields.update(kw)
    return Finding(metric=metric, name=name, verdict=verdict, **fields)  # type: ignore[arg-type]


# Deliberately out of order: the table sorts them.
FINDINGS = [
    _finding("latency_p50", "chat", FindingVerdict.UNCHANGED, baseline=60.14, candidate=61.02,
             delta=0.0146, ci_low=-0.011, ci_high=0.032, p_value=0.41, threshold=0.1, unit="ms"),
    _finding("throughput", "*", FindingVerdict.IMPROVEMENT, baseline=95.0, candidate=110.0,
             delta=0.158, ci_low=0.12, ci_high=0.19, p_value=0.00002, threshold=0.05,
             unit="req/s"),
    _finding("error_rate", "*", FindingVerdict.REGRESSION, baseline=0.1, candidate=5.9,
             delta=5.8, ci_low=4.9, ci_high=6.6, p_value=0.0003, threshold=0.5, unit="%"),
    _finding("ttft_p99", "stream", FindingVerdict.INCONCLUSIVE, baseline=150.0, candidate=171.0,
             delta=0.14, ci_low=-0.02, ci_high=0.3, p_value=0.09, threshold=0.1, unit="ms",
             detail="not enough data: 8 vs 9 steady windows (need 12)"),
    _finding("latency_p99", "chat", FindingVerdict.REGRESSION, baseline=130.0, candidate=163.0,
             delta=0.254, ci_low=0.18, ci_high=0.33, p_value=0.0012, threshold=0.1, unit="ms"),
    _finding("crash", "*", FindingVerdict.REGRESSION, detail="gateway crashed: exit code -9"),
    _finding("memory_leak", "*", FindingVerdict.REGRESSION, baseline=0.4, candidate=21.5,
             delta=21.5, ci_low=17.0, ci_high=26.0, threshold=5.0, unit="MB/h"),
    _finding("change.error_rate", "chat", FindingVerdict.REGRESSION, baseline=0.0,
             candidate=5.8, delta=5.8, threshold=0.5, unit="pp", at_s=3660.0,
             detail="errors of chat rose from 0 % to 5.8 % at 61 min"),
]  # fmt: skip


def test_findings_table_matches_the_golden_file() -> None:
    html = render_findings_table(FINDINGS)
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(html, encoding="utf-8")
    assert html == GOLDEN.read_text(encoding="utf-8")


def test_empty_findings_say_so() -> None:
    html = render_findings_table([])
    assert "No findings recorded for this run." in html
    assert html.count("<tr") == 2  # the header row and the one empty row
