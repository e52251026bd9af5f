"""Rendering a run page to disk: files, CSV, shared assets, escaping, secrets, downsampling."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from report_fixtures import EVIL_BUILD, EVIL_MESSAGE, EVIL_NAME, EVIL_TAG, SECRET, StoredPair
from sqlalchemy.orm import Session, sessionmaker

from observatory.analysis import RunData
from observatory.analysis.injection import busy_neighbours
from observatory.analysis.rundata import RESOURCE_COLUMNS, empty_frame
from observatory.analysis.shared_host import set_aside
from observatory.domain import Verdict
from observatory.report import ReportInput, load_report_input, render_run_report
from observatory.report.assets import STATIC_DIR
from observatory.report.model import BuildInfo, RunInfo, StoredAnalysis
from observatory.store.db import transaction


def _render(sessions: sessionmaker[Session], run_id: int, out: Path) -> Path:
    with transaction(sessions) as session:
        inp = load_report_input(session, run_id, config={"gateway": {"master_key": SECRET}})
    return render_run_report(inp, out)


def _chart_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html)
    assert match is not None
    return json.loads(match.group(1))


def test_page_csv_and_assets_are_written(
    sqlite_store: tuple[sessionmaker[Session], StoredPair], tmp_path: Path
) -> None:
    sessions, stored_pair = sqlite_store
    page = _render(sessions, stored_pair.candidate_id, tmp_path)
    assert page == tmp_path / "runs" / str(stored_pair.candidate_id) / "index.html"
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE", "charts.js", "report.css"):
        assert (tmp_path / "static" / name).read_bytes() == (STATIC_DIR / name).read_bytes()
    html = page.read_text()
    assert 'src="../../static/uPlot.iife.min.js"' in html
    assert "http://" not in html.replace("http://www.w3.org", "")  # no CDN, works offline
    assert "https://" not in html
    rows = list(csv.DictReader(io.StringIO((page.parent / "windows.csv").read_text())))
    assert len(rows) == stored_pair.window_counts[stored_pair.candidate_id]  # not downsampled
    assert {"series", "name", "t", "count", "failures", "p99", "histogram"} <= set(rows[0])


def test_shared_assets_are_copied_only_when_missing_or_changed(
    sqlite_store: tuple[sessionmaker[Session], StoredPair], tmp_path: Path
) -> None:
    sessions, stored_pair = sqlite_store
    _render(sessions, stored_pair.candidate_id, tmp_path)
    uplot = tmp_path / "static" / "uPlot.iife.min.js"
    css = tmp_path / "static" / "report.css"
    before = uplot.stat().st_mtime_ns
    css.write_text("/* tampered */")
    _render(sessions, stored_pair.baseline_id, tmp_path)
    assert uplot.stat().st_mtime_ns == before  # unchanged: not rewritten
    assert css.read_bytes() == (STATIC_DIR / "report.css").read_bytes()  # changed: restored


def test_user_strings_are_escaped(
    sqlite_store: tuple[sessionmaker[Session], StoredPair], tmp_path: Path
) -> None:
    sessions, stored_pair = sqlite_store
    html = _render(sessions, stored_pair.candidate_id, tmp_path).read_text()
    for evil in (EVIL_BUILD, EVIL_TAG, EVIL_MESSAGE, EVIL_NAME, "<i>not enough windows</i>"):
        assert evil not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;litellm-dev" in html
    assert "&lt;img src=x onerror=&#34;window.__pwned = 2&#34;&gt;" in html
    # only our own three script elements exist
    assert len(re.findall(r"<script\b", html)) == 3
    # a request name in the chart JSON cannot close the script element, yet round-trips
    data = _chart_data(html)
    assert any(c["title"].endswith(EVIL_NAME) for c in data["charts"])


def test_secrets_never_reach_the_files(
    sqlite_store: tuple[sessionmaker[Session], StoredPair], tmp_path: Path
) -> None:
    sessions, stored_pair = sqlite_store
    page = _render(sessions, stored_pair.candidate_id, tmp_path)
    for path in page.parent.iterdir():
        assert SECRET not in path.read_text(), path.name
    html = page.read_text()
    assert "master_key" in html  # the key is shown, its value is not
    assert "&lt;redacted&gt;" in html
    assert "max_tokens" in html  # not every key with "token" in it is a secret
    assert "gateway.master_key" in html  # nested fingerprints are flattened, then redacted


def test_findings_sorted_and_charts_marked(
    sqlite_store: tuple[sessionmaker[Session], StoredPair], tmp_path: Path
) -> None:
    sessions, stored_pair = sqlite_store
    html = _render(sessions, stored_pair.candidate_id, tmp_path).read_text()
    verdicts = re.findall(r'<tr class="finding verdict-(\w+)">', html)
    # regressions and improvements open, then unchanged and inconclusive folded
    assert verdicts == ["regression"] * 4 + ["improvement", "unchanged", "inconclusive"]
    charts = {c["id"]: c for c in _chart_data(html)["charts"]}
    assert {"latency-chat", "throughput", "errors", "memory", "cpu"} <= set(charts)
    assert {"ttft-chat_stream", "inter_chunk-chat_stream", "overhead-chat"} <= set(charts)
    assert [m["at"] for m in charts["errors"]["marks"]] == [600.0]
    kinds = [b["kind"] for b in charts["latency-chat"]["bands"]]
    assert kinds == ["warmup", "fault"]
    labels = [line["label"] for line in charts["memory"]["lines"]]
    assert "fitted slope +24 MB/h" in labels
    assert any(line["baseline"] for line in charts["latency-chat"]["lines"])


def _long_input(hours: float, window_s: float) -> ReportInput:
    t = np.arange(0.0, hours * 3600.0, window_s)
    p99 = np.full(t.size, 100.0)
    p99[t.size // 3] = 10_000.0  # one bad window must stay visible after downsampling
    windows = pd.DataFrame(
        {
            "series": "latency",
            "name": "chat",
            "t": t,
            "length_s": window_s,
            "count": 50,
            "failures": 0,
            "histogram": "",
            "p50": 50.0,
            "p90": 80.0,
            "p95": 90.0,
            "p99": p99,
            "p999": 120.0,
            "max": 150.0,
            "saturated": False,
        }
    )
    data = RunData.empty(duration_s=hours * 3600.0, window_s=window_s).with_frames(
        windows=windows, resources=empty_frame(RESOURCE_COLUMNS)
    )
    run = RunInfo(1, "long", "done", "pass", None, None, None, hours * 3600.0, 60.0, window_s)
    analysis = StoredAnalysis(Verdict.PASS, "", (), (), saturated=False)
    return ReportInput(run, BuildInfo("b", "litellm", "1", "candidate", "pip"), analysis, data)


def test_display_is_downsampled_but_spikes_survive(tmp_path: Path) -> None:
    inp = _long_input(hours=6, window_s=5.0)  # 4,320 windows
    html = render_run_report(inp, tmp_path, max_points=1000).read_text()
    chart = next(c for c in _chart_data(html)["charts"] if c["id"] == "latency-chat")
    assert len(chart["x"]) <= 1000
    p99 = next(line for line in chart["lines"] if line["label"] == "p99")
    assert max(v for v in p99["values"] if v is not None) == 10_000.0
    assert "one point per 25 s" in html
    rows = (tmp_path / "runs" / "1" / "windows.csv").read_text().count("\n") - 1
    assert rows == 4320  # the CSV keeps every window


def test_windows_set_aside_are_shaded_as_merged_spans(tmp_path: Path) -> None:
    inp = _long_input(hours=1, window_s=10.0)
    windows = inp.candidate.windows.assign(saturated=inp.candidate.windows["t"] == 3000.0)
    data = busy_neighbours(
        inp.candidate.with_frames(windows=windows), 1.0, from_s=600.0, until_s=900.0
    )
    inp = replace(inp, candidate=set_aside(data, 0.5))
    html = render_run_report(inp, tmp_path).read_text()
    chart = next(c for c in _chart_data(html)["charts"] if c["id"] == "latency-chat")
    spans = [(b["start"], b["end"]) for b in chart["bands"] if b["kind"] == "disturbed"]
    assert spans == [(600.0, 900.0), (3000.0, 3010.0)]  # neighbours, then the generator


def test_a_run_without_data_or_verdict_still_renders(tmp_path: Path) -> None:
    run = RunInfo(5, "chat", "error", None, "gateway never became ready", None, None, 600.0,
                  60.0, 10.0)  # fmt: skip
    analysis = StoredAnalysis(None, "", (), (), saturated=False)
    inp = ReportInput(run, BuildInfo("b", "litellm", "1", "candidate", "pip"), analysis,
                      RunData.empty())  # fmt: skip
    html = render_run_report(inp, tmp_path).read_text()
    assert '<section class="banner verdict-error"' in html
    assert "gateway never became ready" in html
    assert "No time series were recorded for this run." in html
    assert _chart_data(html) == {"charts": []}
    summary = json.loads((tmp_path / "runs" / "5" / "summary.json").read_text())
    assert (summary["p99_ms"], summary["error_rate"], summary["memory_slope_mb_h"]) == (
        None,
        None,
        None,
    )
