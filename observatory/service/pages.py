"""HTML served by the app: the live index, run reports, their CSV, static assets.

The run reports are the static files ``conclude.write_report`` writes under
``data_dir/reports``; this module only serves them. A report page links its assets as
``../../static/...`` and its neighbours as ``../<id>/index.html``; served at
``/runs/<id>/report`` those resolve to ``/static/...`` and ``/runs/<id>/index.html``, so both
are served too (and ``/reports/...`` serves the whole static tree, index and history pages).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from markupsafe import escape
from starlette.types import Receive, Scope, Send

from observatory.report.assets import publish_static
from observatory.report.findings import number
from observatory.report.format import duration
from observatory.report.index import HISTORY_DIR, scenario_slug
from observatory.report.render import environment
from observatory.service import queries
from observatory.service.auth import state_of
from observatory.service.login import require_page_read
from observatory.service.problems import ApiError, error_body
from observatory.service.schemas import RowId
from observatory.service.sessions import logged_in
from observatory.service.state import ServiceState
from observatory.service.views import report_file, reports_dir, waiting_reason
from observatory.store import queue
from observatory.store.db import transaction
from observatory.store.tables import Build, Run

REFRESH_S = 5
RECENT = 50
router = APIRouter(include_in_schema=False, dependencies=[Depends(require_page_read)])


class ReadProtectedFiles(StaticFiles):
    """Static files behind the read token when ``service.read_auth`` is on.

    Mounted apps bypass router dependencies, so the check is made here.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                require_page_read(Request(scope))
            except ApiError as exc:
                body = error_body(exc.message)
                await JSONResponse(body, exc.status, headers=exc.headers)(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def mount_static(app: FastAPI) -> None:
    """Serve the shared assets and the static report tree (published now if missing)."""
    settings = app.state.service.settings
    static = publish_static(reports_dir(settings))
    app.mount("/static", StaticFiles(directory=static), name="static")
    reports = ReadProtectedFiles(directory=reports_dir(settings), html=True)
    app.mount("/reports", reports, name="reports")


@router.get("/", response_class=HTMLResponse)
def live_index(request: Request) -> HTMLResponse:
    state = state_of(request)
    with transaction(state.sessions) as session:
        running = queries.active(session)
        queued = queries.runs_in(session, ["queued"])
        waits = {run.id: queue.waiting_on_baseline(session, run) for run, _ in queued}
        recent = queries.recent_finished(session, RECENT)
    html = (
        environment()
        .get_template("live_index.html.j2")
        .render(
            running=[_running_row(r, b) for r, b in running],
            queued=[
                _queued_row(i, r, b, waits[r.id], state.host_fingerprint)
                for i, (r, b) in enumerate(queued)
            ],
            recent=[
                _recent_row(r, b, report_file(state.settings, r.id).is_file()) for r, b in recent
            ],
            static="/static",
            refresh_s=REFRESH_S,
            logged_in=logged_in(request),
            generated_at=datetime.now(UTC),
        )
    )
    return HTMLResponse(html)


def _running_row(run: Run, build: Build) -> dict[str, Any]:
    progress = dict(run.progress or {})
    elapsed = progress.get("elapsed_s")
    percent = 0.0 if not elapsed else min(100.0, 100.0 * float(elapsed) / run.duration_s)
    rate = progress.get("error_rate")
    return {
        "id": run.id,
        "scenario": run.scenario,
        "history": _history(run.scenario),
        "build": build.name,
        "version": build.version,
        "role": run.role,
        "status": run.status,
        "cancel_requested": run.cancel_requested,
        "percent": round(percent, 1),
        "elapsed": duration(elapsed) or "0s",
        "planned": duration(run.duration_s),
        "rps": number(progress.get("rps")),
        "p99": number(progress.get("p99_ms"), "ms"),
        "error_rate": number(None if rate is None else 100.0 * rate, "%"),
        "rss": number(progress.get("gateway_rss_mb"), "MB"),
        "worker": run.claimed_by or "",
    }


def _queued_row(index: int, run: Run, build: Build, waits: int | None, host: str) -> dict[str, Any]:
    return {
        "position": index + 1,
        "id": run.id,
        "scenario": run.scenario,
        "build": build.name,
        "version": build.version,
        "role": run.role,
        "planned": duration(run.duration_s),
        "waiting_for": waits,
        "waiting_reason": waiting_reason(run, host),
    }


def _recent_row(run: Run, build: Build, has_report: bool) -> dict[str, Any]:
    return {
        "id": run.id,
        "ended": run.ended_at,
        "scenario": run.scenario,
        "history": _history(run.scenario),
        "build": build.name,
        "version": build.version,
        "role": run.role,
        "status": run.status,
        "verdict": run.verdict or "",
        "reason": run.verdict_reason or run.end_reason or "",
        "report": has_report,
    }


def _history(scenario: str) -> str:
    """The scenario's release history page in the static report tree."""
    return f"/reports/{HISTORY_DIR}/{scenario_slug(scenario)}.html"


@router.get("/index.html")
def index_alias() -> RedirectResponse:
    return RedirectResponse("/", status_code=307)


@router.get("/runs/{run_id}/report")
@router.get("/runs/{run_id}/index.html")
def run_report(run_id: RowId, request: Request) -> Response:
    """The run's static report page, or a 404 page saying where the run is."""
    state = state_of(request)
    page = report_file(state.settings, run_id)
    if page.is_file():
        return FileResponse(page, media_type="text/html")
    return _missing(state, run_id, "Its report is written when the run ends.")


@router.get("/runs/{run_id}/windows.csv")
def run_windows(run_id: RowId, request: Request) -> Response:
    """Every stored window of the run (written with its report)."""
    state = state_of(request)
    path = report_file(state.settings, run_id, "windows.csv")
    if path.is_file():
        return FileResponse(path, media_type="text/csv", filename=f"run-{run_id}-windows.csv")
    return _missing(state, run_id, "Its windows.csv is written with its report.")


def _missing(state: ServiceState, run_id: int, hint: str) -> HTMLResponse:
    with transaction(state.sessions) as session:
        run = session.get(Run, run_id)
        status = None if run is None else run.status
    what = f"Run {run_id} is {status}." if status else f"There is no run {run_id}."
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Not found</title>"
        "<link rel='stylesheet' href='/static/report.css'></head><body><main>"
        f"<h1>Not written yet</h1><p>{escape(what)} {escape(hint) if status else ''}</p>"
        "<p><a href='/'>Back to the live index</a></p></main></body></html>"
    )
    return HTMLResponse(body, status_code=404)
