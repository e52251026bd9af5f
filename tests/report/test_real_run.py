"""The report of a real short run in headless Chromium.

The run pipeline executes a stable baseline and a candidate for real: mock upstream, a toy
OpenAI-compatible gateway process (tests/fixtures/toy_gateway.py), Locust streaming chat
for 12 s each. The page the pipeline wrote (with the real analysis) must load without
console errors or network requests, with data points in every chart and the baseline
overlaid. The screenshot is kept in artifacts/report/real-run.png.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from observatory.domain import RunStatus, TriggerSource
from observatory.environment import host_facts, host_fingerprint
from observatory.pipeline import RunContext, execute_run
from observatory.report import load_index_rows, render_index
from observatory.settings import load_settings
from observatory.store import db
from observatory.store.db import transaction
from observatory.validation import ValidationRequest, plan
from tests.processes import children_of_us

ROOT = Path(__file__).resolve().parents[2]
TOY = ROOT / "tests" / "fixtures" / "toy_gateway.py"
GATEWAY = f"{sys.executable} {TOY} --host {{host}} --port {{port}} --config {{config}}"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

CONFIG = f"""
data_dir: data
gateways:
  toy: {{kind: openai, package: toy-gateway, readiness_timeout: 30s,
         timing_header: x-toy-overhead-ms}}
builds:
  toy-1.0: {{gateway: toy, command: "{GATEWAY}", version: "1.0", channel: stable}}
  toy-1.1: {{gateway: toy, command: "{GATEWAY}", version: "1.1"}}
upstream:
  seed: 7
  latency: {{distribution: fixed, mean: 5ms}}
  stream: {{ttft: 20ms, chunks: 5, chunk_delay: 5ms}}
scenarios:
  stream:
    file: chat_stream.py
    profile: {{model: closed, users: 2, spawn_rate: 2, wait_min: 20ms, wait_max: 20ms}}
    duration: 12s
    warmup: 2s
    window: 1s
    params: {{model: gpt-4o-mini, max_tokens: 16}}
load: {{sample_interval: 1s}}
"""

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def real_reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """Run baseline then candidate through the real pipeline; return (reports dir, run id)."""
    root = tmp_path_factory.mktemp("real")
    (root / "observatory.yaml").write_text(CONFIG)
    settings = load_settings(root / "observatory.yaml", environ={})
    engine = db.make_engine(settings.db_url)
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    request = ValidationRequest(build="toy-1.1", scenarios=("stream",), source=TriggerSource.CLI)
    with transaction(sessions) as session:
        run_ids = plan(session, settings, request, host_fingerprint(host_facts())).run_ids
    try:
        for run_id in run_ids:
            outcome = execute_run(run_id, RunContext(settings, sessions, "report-test"))
            assert outcome.status == RunStatus.DONE, outcome.reason
            assert outcome.report_path is not None
        out = outcome.report_path.parents[2]
        with transaction(sessions) as session:
            render_index(load_index_rows(session, out), out)
    finally:
        engine.dispose()
    assert len(run_ids) == 2, "a stable baseline run is planned first"
    assert children_of_us() == []
    return out, run_ids[-1]


def test_report_of_a_real_run_in_chromium(real_reports: tuple[Path, int], artifacts: Path) -> None:
    if not Path(CHROMIUM).is_file():
        reason = f"{CHROMIUM} missing: apt-get install chromium chromium-driver (make browser)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    out, run_id = real_reports
    errors: list[str] = []
    remote: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.route("**/*", lambda route: _local_only(route, remote))
        page.goto((out / "runs" / str(run_id) / "index.html").as_uri())
        page.wait_for_selector("html[data-charts-ready]")
        charts = page.evaluate(_CHARTS_JS)
        banner = page.inner_text(".banner-verdict")
        page.screenshot(path=str(artifacts / "real-run.png"), full_page=True)
        browser.close()
    assert errors == []
    assert remote == []
    assert banner in {"PASS", "INCONCLUSIVE", "REGRESSION"}
    ids = {chart["id"] for chart in charts}
    name = "chat_stream:gpt-4o-mini"
    expected = {f"latency-{name}", f"ttft-{name}", f"inter_chunk-{name}"}
    assert expected | {"throughput", "errors", "memory", "cpu"} <= ids
    for chart in charts:
        assert chart["points"] > 0, chart
    latency = next(chart for chart in charts if chart["id"] == f"latency-{name}")
    assert latency["baselinePoints"] > 0  # the stable release is overlaid


def _local_only(route: Any, remote: list[str]) -> None:
    if route.request.url.startswith("file://"):
        route.continue_()
    else:
        remote.append(route.request.url)
        route.abort()


# Points per chart, and points of its baseline lines (uPlot series labelled "baseline ...").
_CHARTS_JS = """
window.observatoryCharts.map(c => ({
  id: c.id,
  points: c.points,
  baselinePoints: c.plot.series.reduce((n, s, i) => n + (i > 0 && s.label.startsWith('baseline')
    ? c.plot.data[i].filter(v => v != null).length : 0), 0),
}))
"""
