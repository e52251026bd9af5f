"""The report's first screen, as a person sees it, in headless Chromium.

Four runs, each decided by the real analysis (``analyse``) on synthetic runs with a known
fault injected into the candidate: a pass, a regression with error bursts, a memory leak,
and a run measured beside busy neighbours (inconclusive). Within the first 1,000 px the
page must show the verdict and its reason, the "what changed" card and, for errors, the
failure timeline; the long lists must be folded; nothing may load from the network.

Screenshots go to artifacts/report/first-screen-*.png; with UPDATE_DOCS_IMAGES=1 they
also replace docs/images/report-*.png (the README shows the regression one).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from observatory.analysis import RunData
from observatory.analysis.injection import add_errors, add_leak, busy_neighbours
from observatory.analysis.synthetic import Profile, synthetic_run
from observatory.analysis.verdict import analyse
from observatory.report import ReportInput, render_run_report
from observatory.report.model import BaselineInfo, BuildInfo, ErrorGroup, RunInfo
from observatory.settings import ThresholdSettings

ROOT = Path(__file__).resolve().parents[2]
DOCS_IMAGES = ROOT / "docs" / "images"
FIRST_SCREEN_PX = 1000
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
PROFILE = Profile(duration_s=1800.0, warmup_s=120.0, window_s=10.0)
MESSAGE = "Cannot send a request, as the client has been closed."
MESSAGES = {"http_500": "upstream returned 500", "timeout": "read timeout after 30 s"}


def _bursts(run: RunData) -> RunData:
    """Errors in bursts of 30 s every 90 s from 10 min on, as a TTL-driven bug fails."""
    for start in range(600, 1800, 90):
        run = add_errors(run, 0.4, from_s=start, until_s=start + 30, seed=start, category="closed")
    return run


def _neighbours(run: RunData) -> RunData:
    return busy_neighbours(run, 1.5, from_s=300.0, until_s=1500.0)


@dataclass(frozen=True)
class Case:
    name: str
    verdict: str
    inject: Callable[[RunData], RunData]
    timeline: bool = False


CASES = (
    Case("pass", "pass", lambda run: run),
    Case("regression", "regression", _bursts, timeline=True),
    Case("memory", "regression", lambda run: add_leak(run, 90.0)),
    Case("inconclusive", "inconclusive", _neighbours),
)


def _error_groups(data: RunData) -> tuple[ErrorGroup, ...]:
    """The stored error groups the report reads, with one sample message each."""
    groups = []
    for (name, category), rows in data.errors.groupby(["name", "category"]):
        if rows["count"].sum() > 0:
            count, first, last = int(rows["count"].sum()), rows["t"].min(), rows["t"].max()
            message = MESSAGES.get(str(category), MESSAGE)
            groups.append(ErrorGroup(str(name), str(category), count, first, last, (message,)))
    return tuple(groups)


def _report(case: Case, out: Path) -> Path:
    baseline = synthetic_run(PROFILE, seed=11)
    candidate = case.inject(synthetic_run(PROFILE, seed=12))
    analysis = analyse(candidate, baseline, ThresholdSettings())
    end = T0 + timedelta(seconds=PROFILE.duration_s)
    run = RunInfo(2, "mixed", "done", str(analysis.verdict), "completed", T0, end,
                  PROFILE.duration_s, PROFILE.warmup_s, PROFILE.window_s,
                  environment={"gateway": {"version": "1.81.9"}, "kernel": "6.1"})  # fmt: skip
    base_build = BuildInfo("litellm-stable", "litellm", "1.81.9", "stable", "pip")
    environment = {"gateway": {"version": "1.81.9"}, "kernel": "6.2"}
    base = BaselineInfo(1, base_build, T0 - timedelta(hours=1), T0, environment=environment)
    inp = ReportInput(
        run=run,
        build=BuildInfo(f"litellm-{case.name}", "litellm", "1.83.14", "candidate", "pip"),
        analysis=analysis,
        candidate=candidate,
        baseline=base,
        baseline_data=baseline,
        errors=_error_groups(candidate),
    )
    return render_run_report(inp, out / case.name)


def _top(page: Any, selector: str) -> float:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, f"{selector} is not visible"
    return float(box["y"])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_first_screen_answers_what_changed(
    case: Case, browser: Any, tmp_path: Path, artifacts: Path
) -> None:
    page_path = _report(case, tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": FIRST_SCREEN_PX})
    remote: list[str] = []
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith("file://")
               else (remote.append(r.request.url), r.abort()))  # fmt: skip
    page.goto(page_path.as_uri())
    page.wait_for_selector("html[data-charts-ready]")
    shot = artifacts / f"first-screen-{case.name}.png"
    page.screenshot(path=str(shot))
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        shutil.copyfile(shot, DOCS_IMAGES / f"report-{case.name}.png")

    assert page.inner_text(".banner-verdict") == case.verdict.upper()
    assert page.inner_text("#verdict .reason").strip()
    assert "of *" not in page.inner_text("body")
    assert _top(page, "#verdict .reason") < FIRST_SCREEN_PX
    assert _top(page, "#headline") < FIRST_SCREEN_PX
    assert page.locator("#headline th[scope=row]").first.inner_text() == "all requests"
    if case.timeline:
        assert _top(page, "#timeline") < FIRST_SCREEN_PX
        assert page.locator("#timeline svg rect.bar").count() >= 10  # every burst drawn
        assert MESSAGE in page.inner_text("#timeline")
    for folded in ("#unchanged", "#fingerprints"):
        assert page.locator(folded).count() == 1
        assert page.eval_on_selector(folded, "d => d.open") is False
    summary = page.inner_text("#fingerprints summary")
    assert "1 differs from the baseline" in summary  # the kernel
    assert remote == []
    page.close()
