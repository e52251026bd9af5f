"""The pages in real headless Chromium (Debian's): no console errors, charts with data points,
no network access, escaped strings stay text, index filters work. Screenshots are kept in
artifacts/report/ (gitignored) for a human to look at.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from report_fixtures import EVIL_BUILD, EVIL_MESSAGE, EVIL_TAG, T0, StoredPair, sqlite_pair
from sqlalchemy.orm import Session, sessionmaker

from observatory.report import (
    load_index_rows,
    load_report_input,
    render_index,
    render_run_report,
    scenario_slug,
)
from observatory.store.builds import upsert_build
from observatory.store.db import transaction
from observatory.store.tables import Run


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StoredPair]:
    """A report tree rendered from a real SQLite store: two run pages, index, history."""
    root = tmp_path_factory.mktemp("site")
    with sqlite_pair(root) as (sessions, pair):
        _store_other_run(sessions)
        out = root / "reports"
        for run_id in (pair.candidate_id, pair.baseline_id):
            with transaction(sessions) as session:
                inp = load_report_input(session, run_id)
            render_run_report(inp, out)
        with transaction(sessions) as session:
            render_index(load_index_rows(session, out), out)
    return out, pair


def _store_other_run(sessions: sessionmaker[Session]) -> None:
    """A run of another gateway and scenario, a day later, so the filters have choices."""
    with transaction(sessions) as session:
        build = upsert_build(session, "proxy-2.0", "openai", "2.0", "url", "http://127.0.0.1:1")
        session.add(
            Run(
                build_id=build.id,
                scenario="embeddings",
                profile={"model": "open", "rate": 50},
                duration_s=300.0,
                warmup_s=30.0,
                window_s=10.0,
                status="done",
                verdict="pass",
                started_at=T0 + timedelta(days=1),
                ended_at=T0 + timedelta(days=1, minutes=5),
            )
        )


class PageWatch:
    """Console errors, page errors and any request that is not a local file."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        self.remote: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.route("**/*", self._route)

    def _route(self, route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.remote.append(route.request.url)
            route.abort()


def _open(browser: Any, path: Path) -> tuple[Any, PageWatch]:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    watch = PageWatch(page)
    page.goto(path.as_uri())
    return page, watch


def test_run_page_loads_with_charts_full_of_data(
    browser: Any, site: tuple[Path, StoredPair], artifacts: Path
) -> None:
    out, pair = site
    page, watch = _open(browser, out / "runs" / str(pair.candidate_id) / "index.html")
    page.wait_for_selector("html[data-charts-ready]")
    charts = page.evaluate(
        "window.observatoryCharts.map(c => ({id: c.id, points: c.points,"
        " width: c.plot.width, drawn: c.plot.root.querySelectorAll('canvas').length}))"
    )
    figures = page.locator("figure[data-chart]").count()
    page.screenshot(path=str(artifacts / "run-page.png"), full_page=True)
    assert watch.errors == []
    assert watch.remote == []
    assert figures >= 12
    assert len(charts) == figures
    for chart in charts:
        assert chart["points"] > 0, chart
        assert chart["drawn"] == 1, chart
        assert chart["width"] >= 320, chart
    assert page.locator("ol.marks li").first.inner_text().startswith("error_rate (chat)")
    page.close()


def test_markup_in_user_strings_renders_as_text(
    browser: Any, site: tuple[Path, StoredPair]
) -> None:
    out, pair = site
    page, watch = _open(browser, out / "runs" / str(pair.candidate_id) / "index.html")
    page.wait_for_selector("html[data-charts-ready]")
    assert page.evaluate("window.__pwned") is None  # no injected script or handler ran
    assert EVIL_BUILD in page.locator("h1").inner_text()
    assert EVIL_TAG in page.locator(".tags").inner_text()
    assert EVIL_MESSAGE in page.locator("#errors").inner_text()
    assert page.locator("#errors b, #verdict img, #findings i").count() == 0
    assert watch.errors == []
    page.close()


def test_index_filters_runs(browser: Any, site: tuple[Path, StoredPair], artifacts: Path) -> None:
    out, _ = site
    page, watch = _open(browser, out / "index.html")

    def shown() -> int:
        return int(page.get_attribute("html", "data-shown") or -1)

    assert shown() == 3
    page.select_option("select[data-filter=gateway]", "litellm")
    assert shown() == 2
    page.select_option("select[data-filter=build]", EVIL_BUILD)
    assert shown() == 1
    assert page.locator("#runs tbody tr.run:visible td").nth(4).inner_text() == EVIL_BUILD
    page.click("#reset-filters")
    page.wait_for_function("document.documentElement.dataset.shown === '3'")
    page.select_option("select[data-filter=scenario]", "embeddings")
    assert shown() == 1
    page.select_option("select[data-filter=scenario]", "")
    page.select_option("select[data-filter=verdict]", "regression")
    assert shown() == 1
    page.select_option("select[data-filter=verdict]", "")
    page.fill("input[data-filter=from]", "2026-03-03")
    assert shown() == 1  # only the run a day later
    page.fill("input[data-filter=to]", "2026-03-02")
    assert shown() == 0
    page.fill("input[data-filter=from]", "")
    assert shown() == 2
    assert page.inner_text("#shown-count") == "2 of 3 runs"
    page.screenshot(path=str(artifacts / "index.png"), full_page=True)
    assert watch.errors == []
    assert watch.remote == []
    page.close()


def test_release_history_marks_stable_releases(
    browser: Any, site: tuple[Path, StoredPair], artifacts: Path
) -> None:
    out, _ = site
    page, watch = _open(browser, out / "history" / f"{scenario_slug('chat-mixed')}.html")
    page.wait_for_selector("html[data-charts-ready]")
    rows = page.locator("#history tbody tr.release")
    assert rows.count() == 2
    stable = page.locator("#history tbody tr.release.stable td").first.inner_text()
    assert stable == "litellm-1.80.0"
    charts = page.evaluate("window.observatoryCharts.map(c => c.points)")
    assert charts == [2, 2, 2]  # p99, error rate, memory slope for both releases
    page.screenshot(path=str(artifacts / "history.png"), full_page=True)
    assert watch.errors == []
    page.close()
