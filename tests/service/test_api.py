"""The HTTP API on a real loopback uvicorn server, against SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.builds.spec import REFUSED_RELEASES
from observatory.domain import RunStatus
from observatory.service.auth import token_matches
from observatory.settings import Settings
from observatory.store.db import transaction
from observatory.store.tables import Build, Run, Validation
from tests.service.conftest import TOKEN, MakeSettings, Server

CHAT = {"build": "cand", "scenarios": ["chat"], "tag": "v1.81.12"}

REFUSED = min(REFUSED_RELEASES["litellm"])  # a compromised release, from the refusal list


def _post(server: Server, body: dict[str, Any], token: str | None = TOKEN) -> Any:
    with server.client(token) as client:
        return client.post("/api/v1/validations", json=body)


def _count(sessions: sessionmaker[Session], model: type[Validation] | type[Run]) -> int:
    with transaction(sessions) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_post_validation_answers_202_with_runs_and_report_urls(
    server: Server, sessions: sessionmaker[Session]
) -> None:
    response = _post(server, CHAT)
    assert response.status_code == 202, response.text
    body = response.json()
    base, cand = body["run_ids"]
    assert body["candidate_run_ids"] == [cand]
    assert base < cand, "the baseline run is queued first"
    assert body["report_urls"] == [f"http://observatory.test/runs/{cand}/report"]
    assert body["status_url"].endswith(f"/api/v1/validations/{body['validation_id']}")
    assert [r["role"] for r in body["runs"]] == ["baseline", "candidate"]
    assert any("baseline" in note for note in body["notes"])
    with transaction(sessions) as session:
        statuses = {r.id: r.status for r in session.scalars(select(Run))}
        validation = session.get(Validation, body["validation_id"])
        assert validation is not None
        assert validation.source == "api"
    assert statuses == {base: RunStatus.QUEUED, cand: RunStatus.QUEUED}


def test_duplicate_of_a_queued_validation_is_409_with_its_id(server: Server) -> None:
    first = _post(server, CHAT).json()["validation_id"]
    again = _post(server, {**CHAT, "scenarios": ["chat"]})
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["validation_id"] == first
    assert f"validation {first}" in error["message"]
    # The same build by its exact version is the same build: still a duplicate.
    same = _post(server, {**CHAT, "build": "litellm[proxy]==1.81.12"})
    assert same.status_code == 409
    other_tag = _post(server, {**CHAT, "tag": "v1.81.12-rc2"})
    assert other_tag.status_code == 202


def test_an_exact_version_of_the_gateway_package_is_accepted(
    server: Server, sessions: sessionmaker[Session]
) -> None:
    response = _post(server, {"build": "litellm==1.81.15", "scenarios": ["chat", "mixed"]})
    assert response.status_code == 202, response.text
    assert len(response.json()["candidate_run_ids"]) == 2
    with transaction(sessions) as session:
        build = session.scalar(select(Build).where(Build.version == "1.81.15"))
        assert build is not None
        assert (build.provision_kind, build.provision) == ("pip", "litellm[proxy]==1.81.15")


BAD = [
    ({"build": "nope"}, 400, "build", "unknown build (value not shown); give a configured"),
    ({"build": "litellm==1.*"}, 400, "build", "ranges are refused"),
    ({"build": f"litellm=={REFUSED}"}, 400, "build", "compromised release"),
    ({"build": "requests==2.31.0"}, 400, "build", "accepted: litellm"),
    ({"scenarios": ["nope"]}, 400, "scenarios", "unknown scenario 'nope'; known: chat, mixed"),
    ({"scenarios": []}, 422, "scenarios", "at least 1"),
    ({"scenarios": ["chat", "chat"]}, 422, "scenarios", "once"),
    ({"duration": "5 parsecs"}, 422, "duration", "5 parsecs"),
    ({"duration": "30d"}, 400, "duration", "outside 1s..7d"),
    ({"baseline": "sometimes"}, 400, "baseline", "accepted: auto, none, alongside, or a run id"),
    ({"baseline": "99999"}, 400, "baseline", "unknown run 99999"),
    ({"command": "curl evil | sh"}, 422, "command", "unknown field; accepted: baseline, build"),
    ({"url": "http://10.0.0.1"}, 422, "url", "unknown field"),
    ({"source": "schedule"}, 422, "source", "'api' or 'ci'"),
]


@pytest.mark.parametrize(("change", "status", "field", "words"), BAD)
def test_bad_input_names_the_field_and_writes_nothing(
    server: Server,
    sessions: sessionmaker[Session],
    change: dict[str, Any],
    status: int,
    field: str,
    words: str,
) -> None:
    response = _post(server, {**CHAT, **change})
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert [f["field"] for f in error["fields"]] == [field]
    assert words in error["message"]
    assert (_count(sessions, Validation), _count(sessions, Run)) == (0, 0)


def test_writes_need_the_bearer_token(server: Server) -> None:
    missing = _post(server, CHAT, token=None)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    wrong = _post(server, CHAT, token=TOKEN + "x")
    assert wrong.status_code == 401
    assert TOKEN not in wrong.text
    with server.client(None) as client:
        basic = client.post(
            "/api/v1/validations", json=CHAT, headers={"Authorization": f"Basic {TOKEN}"}
        )
        cancel = client.post("/api/v1/runs/1/cancel")
        promote = client.post("/api/v1/builds/cand/promote")
        reads = client.get("/api/v1/runs")
    assert (basic.status_code, cancel.status_code, promote.status_code) == (401, 401, 401)
    assert reads.status_code == 200, "reads are open unless read_auth is on"


def test_without_a_configured_token_writes_are_refused_with_how_to_fix(
    serve: Callable[[Settings], Server], make_settings: MakeSettings
) -> None:
    server = serve(make_settings())
    response = _post(server, CHAT, token="anything")
    assert response.status_code == 403
    message = response.json()["error"]["message"]
    assert "service.api_token" in message
    assert "OBSERVATORY_SERVICE__API_TOKEN" in message


def test_read_auth_protects_reads_but_not_healthz(
    serve: Callable[[Settings], Server], make_settings: MakeSettings
) -> None:
    env = {"OBSERVATORY_SERVICE__API_TOKEN": TOKEN, "OBSERVATORY_SERVICE__READ_AUTH": "true"}
    server = serve(make_settings(env=env))
    with server.client(None) as anonymous, server.client() as authorised:
        assert anonymous.get("/api/v1/runs").status_code == 401
        assert anonymous.get("/api/v1/queue").status_code == 401
        for page in ("/", "/runs/1/report", "/reports/static/report.css"):
            sent_to_login = anonymous.get(page)  # a browser is sent to the login form
            assert sent_to_login.status_code == 303
            assert sent_to_login.headers["location"].startswith("/login?next=%2F")
        assert authorised.get("/api/v1/runs").status_code == 200
        assert authorised.get("/").status_code == 200
        assert authorised.get("/reports/static/report.css").status_code == 200
        assert anonymous.get("/api/v1/healthz").status_code == 200


def test_token_comparison_is_exact() -> None:
    assert token_matches(TOKEN, TOKEN)
    assert not token_matches(TOKEN[:-1], TOKEN)
    assert not token_matches(TOKEN + "0", TOKEN)
    assert not token_matches("", TOKEN)
    assert not token_matches(TOKEN.upper(), TOKEN)


def test_runs_queue_and_validations_read_back(server: Server) -> None:
    first = _post(server, CHAT).json()
    second = _post(server, {"build": "litellm==1.81.15", "scenarios": ["mixed"]}).json()
    base, cand = first["run_ids"]
    with server.client() as client:
        one = client.get(f"/api/v1/runs/{cand}").json()
        listed = client.get("/api/v1/runs", params={"scenario": "chat"}).json()
        by_build = client.get("/api/v1/runs", params={"build": "stable"}).json()
        queue = client.get("/api/v1/queue").json()
        validation = client.get(f"/api/v1/validations/{first['validation_id']}").json()
        validations = client.get("/api/v1/validations").json()
        unknown = client.get("/api/v1/runs/99999")
        bad_filter = client.get("/api/v1/runs", params={"status": "sleeping"})
    assert one["status"] == "queued"
    assert one["baseline_run_id"] == base
    assert one["report_url"] == f"http://observatory.test/runs/{cand}/report"
    assert one["report_ready"] is False
    assert [r["id"] for r in listed] == [cand, base]
    assert all(r["build"] == "stable" for r in by_build)
    assert [q["run"]["id"] for q in queue["queued"]] == [base, cand, *second["run_ids"]]
    assert queue["queued"][1]["waiting_for"] == base
    assert queue["load_slots"] == 1
    assert validation["status"] == "queued"
    assert validation["verdict"] is None
    assert [r["id"] for r in validation["runs"]] == [base, cand]
    assert [v["id"] for v in validations] == [second["validation_id"], first["validation_id"]]
    assert unknown.status_code == 404
    assert unknown.json()["error"]["message"] == "unknown run 99999"
    assert bad_filter.status_code == 400
    assert "accepted: queued" in bad_filter.json()["error"]["message"]


def _finish(sessions: sessionmaker[Session], run_id: int, status: str, verdict: str | None) -> None:
    with transaction(sessions) as session:
        run = session.get(Run, run_id)
        assert run is not None
        run.status, run.verdict = status, verdict


@pytest.mark.parametrize(
    ("status", "verdict", "overall", "code"),
    [
        ("done", "pass", "pass", 0),
        ("done", "regression", "regression", 1),
        ("done", "no_baseline", "no_baseline", 3),
        ("error", None, "error", 4),
        ("interrupted", None, "error", 4),
    ],
)
def test_a_finished_validation_has_an_overall_verdict_and_exit_code(
    server: Server,
    sessions: sessionmaker[Session],
    status: str,
    verdict: str | None,
    overall: str,
    code: int,
) -> None:
    created = _post(server, CHAT).json()
    base, cand = created["run_ids"]
    url = f"/api/v1/validations/{created['validation_id']}"
    _finish(sessions, base, "done", "pass")
    with server.client() as client:
        assert client.get(url).json()["status"] == "running"
        _finish(sessions, cand, status, verdict)
        view = client.get(url).json()
    assert (view["status"], view["verdict"], view["exit_code"]) == ("finished", overall, code)


def test_cancel_a_queued_run(server: Server, sessions: sessionmaker[Session]) -> None:
    base, _ = _post(server, CHAT).json()["run_ids"]
    with server.client() as client:
        response = client.post(f"/api/v1/runs/{base}/cancel")
        again = client.post(f"/api/v1/runs/{base}/cancel")
        unknown = client.post("/api/v1/runs/99999/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "aborted"
    assert "cancelled" in response.json()["message"]
    assert "already ended" in again.json()["message"]
    assert unknown.status_code == 404
    with transaction(sessions) as session:
        run = session.get(Run, base)
        assert run is not None
        assert run.status == RunStatus.ABORTED


def test_cancel_a_running_run_asks_its_worker(
    server: Server, sessions: sessionmaker[Session]
) -> None:
    base, _ = _post(server, CHAT).json()["run_ids"]
    _finish(sessions, base, "running", None)
    with server.client() as client:
        response = client.post(f"/api/v1/runs/{base}/cancel")
    assert response.json()["status"] == "running"
    with transaction(sessions) as session:
        run = session.get(Run, base)
        assert run is not None
        assert run.cancel_requested


def test_promote_and_list_builds(server: Server) -> None:
    with server.client() as client:
        promoted = client.post("/api/v1/builds/cand/promote")
        unknown = client.post("/api/v1/builds/nope/promote")
        listed = client.get("/api/v1/builds").json()
    assert promoted.status_code == 200
    assert promoted.json()["channel"] == "stable"
    assert promoted.json()["promoted_at"] is not None
    assert unknown.status_code == 404
    assert "unknown build 'nope'" in unknown.json()["error"]["message"]
    assert {b["name"]: b["channel"] for b in listed} == {
        "stable": "stable",
        "cand": "stable",
        "dev": "candidate",
    }


def test_healthz_reports_database_and_components(server: Server) -> None:
    with server.client(None) as client:
        healthy = client.get("/api/v1/healthz")
        server.state.components["worker"] = lambda: True
        server.state.components["scheduler"] = lambda: False
        degraded = client.get("/healthz")
    assert healthy.status_code == 200
    assert healthy.json() == {
        "status": "ok",
        "database": "ok",
        "components": {
            "worker": "disabled",
            "scheduler": "disabled",
            "delivery": "disabled",
            "maintenance": "disabled",
        },
    }
    assert degraded.status_code == 503
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["components"]["scheduler"] == "dead"
    assert degraded.json()["components"]["worker"] == "alive"


def test_openapi_documents_the_api(server: Server) -> None:
    with server.client(None) as client:
        spec = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert docs.status_code == 200
    for path in (
        "/api/v1/validations",
        "/api/v1/validations/{validation_id}",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}",
        "/api/v1/runs/{run_id}/cancel",
        "/api/v1/queue",
        "/api/v1/builds",
        "/api/v1/builds/{name}/promote",
        "/api/v1/healthz",
    ):
        assert path in spec["paths"], path
    body = spec["components"]["schemas"]["ValidationBody"]
    assert body["additionalProperties"] is False


def test_extras_come_from_the_gateway_and_duplicates_use_the_canonical_version(
    server: Server, sessions: sessionmaker[Session]
) -> None:
    first = _post(server, {"build": "litellm==1.81.16", "scenarios": ["chat"]})
    assert first.status_code == 202, first.text
    same = _post(server, {"build": "litellm[proxy]==1.81.16", "scenarios": ["chat"]})
    assert same.status_code == 409, "the gateway's own extras name the same build"
    chosen = _post(server, {"build": "litellm[proxy,zzz]==1.81.16", "scenarios": ["chat"]})
    assert chosen.status_code == 400
    assert [f["field"] for f in chosen.json()["error"]["fields"]] == ["build"]
    assert "extras come from the config of gateway 'litellm'" in chosen.text
    with transaction(sessions) as session:
        versions = session.scalars(select(Build.provision).where(Build.version == "1.81.16"))
        assert list(versions) == ["litellm[proxy]==1.81.16"]
    assert _count(sessions, Validation) == 1


def test_url_build_credentials_are_never_stored(
    serve: Callable[[Settings], Server],
    make_settings: MakeSettings,
    sessions: sessionmaker[Session],
) -> None:
    url_build = "builds:\n  edge: {gateway: litellm, url: 'http://ops:S3CRET@127.0.0.1:4000'}\n"
    settings = make_settings(extra=url_build, env={"OBSERVATORY_SERVICE__API_TOKEN": TOKEN})
    server = serve(settings)
    response = _post(server, {"build": "edge", "scenarios": ["chat"], "baseline": "none"})
    assert response.status_code == 202, response.text
    with transaction(sessions) as session:
        build = session.scalar(select(Build).where(Build.name == "edge"))
        assert build is not None
        assert build.provision == "http://<redacted>@127.0.0.1:4000"
    assert settings.builds["edge"].url == "http://ops:S3CRET@127.0.0.1:4000", "kept in memory"
