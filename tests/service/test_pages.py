"""Pages served by the app: the live index, run reports, their CSV and static assets."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from observatory.report.index import scenario_slug
from observatory.store.db import transaction
from observatory.store.tables import Build, Run, utcnow
from tests.service.conftest import Server


def _queue(server: Server) -> list[int]:
    body = {"build": "cand", "scenarios": ["chat"], "tag": "v1"}
    with server.client() as client:
        run_ids: list[int] = client.post("/api/v1/validations", json=body).json()["run_ids"]
    return run_ids


def test_live_index_shows_running_queued_and_recent_runs(
    server: Server, sessions: sessionmaker[Session]
) -> None:
    base, cand = _queue(server)
    other_base, other = _queue_other(server)
    with transaction(sessions) as session:
        running = session.get(Run, base)
        done = session.get(Run, other_base)
        assert running is not None
        assert done is not None
        running.status, running.started_at = "running", utcnow()
        running.progress = {"elapsed_s": 300.0, "rps": 41.5, "p99_ms": 123.4, "error_rate": 0.002}
        done.status, done.verdict, done.ended_at = "done", "regression", utcnow()
        done.end_reason = "p99 +31 %"
        done_build = done.build_id
    with server.client(None) as client:
        page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert 'http-equiv="refresh"' in html
    running_table = html.split('id="running"')[1].split("</table>")[0]
    assert f'data-run="{base}"' in running_table
    assert 'value="50.0"' in running_table  # 300 s of 10 min
    assert "41.5" in running_table
    assert "123.4 ms" in running_table
    queued_table = html.split('id="queued"')[1].split("</table>")[0]
    assert f'data-run="{cand}"' in queued_table
    assert f"baseline run {base}" in queued_table
    assert f'data-run="{other}"' in queued_table
    recent = html.split('id="recent"')[1].split("</table>")[0]
    assert "verdict-regression" in recent
    assert "p99 +31 %" in recent
    history = f'href="/reports/history/{scenario_slug("mixed")}.html"'
    assert history in recent  # the scenario's release history
    with transaction(sessions) as session:
        build = session.get(Build, done_build)
        assert build is not None
        assert f'{build.name} <span class="muted">{build.version}</span>' in recent


def _queue_other(server: Server) -> list[int]:
    body = {"build": "cand", "scenarios": ["mixed"], "tag": "v1"}
    with server.client() as client:
        run_ids: list[int] = client.post("/api/v1/validations", json=body).json()["run_ids"]
    return run_ids


def test_run_report_csv_and_assets_are_served(server: Server) -> None:
    _, cand = _queue(server)
    reports = server.state.settings.data_dir / "reports"
    with server.client(None) as client:
        missing = client.get(f"/runs/{cand}/report")
        missing_csv = client.get(f"/runs/{cand}/windows.csv")
        nothing = client.get("/runs/99999/report")
        run_dir = reports / "runs" / str(cand)
        run_dir.mkdir(parents=True)
        (run_dir / "index.html").write_text("<html><body>report of run</body></html>")
        (run_dir / "windows.csv").write_text("series,name,t\nlatency,chat,0\n")
        page = client.get(f"/runs/{cand}/report")
        alias = client.get(f"/runs/{cand}/index.html")
        csv = client.get(f"/runs/{cand}/windows.csv")
        css = client.get("/static/report.css")
        css_under_reports = client.get("/reports/static/report.css")
        tree = client.get(f"/reports/runs/{cand}/index.html")
        index = client.get("/index.html", follow_redirects=False)
        traversal = client.get("/reports/%2e%2e/%2e%2e/observatory.yaml")
    assert missing.status_code == 404
    assert f"Run {cand} is queued" in missing.text
    assert missing_csv.status_code == 404
    assert nothing.status_code == 404
    assert "no run 99999" in nothing.text
    assert page.status_code == 200
    assert "report of run" in page.text
    assert alias.text == page.text
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.startswith("series,name,t")
    assert css.status_code == 200
    assert css_under_reports.status_code == 200
    assert tree.status_code == 200
    assert (index.status_code, index.headers["location"]) == (307, "/")
    assert traversal.status_code == 404
