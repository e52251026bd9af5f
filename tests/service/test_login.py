"""The browser login of the HTML pages under ``read_auth``, on a real loopback server."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from observatory.service.sessions import COOKIE
from tests.service.conftest import TOKEN, MakeSettings, Server

READ_AUTH = {"OBSERVATORY_SERVICE__API_TOKEN": TOKEN, "OBSERVATORY_SERVICE__READ_AUTH": "true"}


@pytest.fixture
def protected(serve: Callable[..., Server], make_settings: MakeSettings) -> Server:
    return serve(make_settings(env=READ_AUTH))


def _browser(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10)


def _log_in(browser: httpx.Client, token: str = TOKEN, next_page: str = "/") -> httpx.Response:
    return browser.post("/login", data={"token": token, "next": next_page})


def test_a_page_sends_a_browser_to_the_form_and_back(protected: Server) -> None:
    with _browser(protected) as browser:
        sent = browser.get("/runs/1/report")
        assert sent.status_code == 303
        assert sent.headers["location"] == "/login?next=%2Fruns%2F1%2Freport"
        form = browser.get(sent.headers["location"])
        assert form.status_code == 200
        assert "name='token'" in form.text
        assert "value='/runs/1/report'" in form.text
        logged_in = _log_in(browser, next_page="/runs/1/report")
        assert logged_in.status_code == 303
        assert logged_in.headers["location"] == "/runs/1/report"
        assert browser.get("/").status_code == 200
        assert browser.get("/reports/static/report.css").status_code == 200
        assert browser.get("/api/v1/runs").status_code == 200, "the session reads the API too"


def test_the_cookie_is_opaque_http_only_and_same_site_strict(protected: Server) -> None:
    with _browser(protected) as browser:
        set_cookie = _log_in(browser).headers["set-cookie"]
    value = set_cookie.split(";")[0].removeprefix(f"{COOKIE}=")
    assert TOKEN not in set_cookie
    assert len(value) >= 32
    flags = {part.strip().lower() for part in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite=strict", "path=/"} <= flags
    assert "secure" not in flags, "plain http on loopback: a Secure cookie would never return"


def test_the_cookie_is_secure_when_the_service_is_public_over_https(
    serve: Callable[..., Server], make_settings: MakeSettings
) -> None:
    extra = "  public_base_url: https://observatory.example.com\n"
    server = serve(make_settings(extra=f"service:\n  lease: 30s\n{extra}", env=READ_AUTH))
    with _browser(server) as browser:
        flags = {p.strip().lower() for p in _log_in(browser).headers["set-cookie"].split(";")}
    assert "secure" in flags


def test_a_session_never_authorises_a_write(protected: Server) -> None:
    with _browser(protected) as browser:
        _log_in(browser)
        assert browser.get("/").status_code == 200
        body = {"build": "cand", "scenarios": ["chat"]}
        for path, json in (
            ("/api/v1/validations", body),
            ("/api/v1/runs/1/cancel", None),
            ("/api/v1/builds/cand/promote", None),
        ):
            response = browser.post(path, json=json)
            assert response.status_code == 401, (path, response.text)
            assert "Authorization: Bearer" in response.json()["error"]["message"]


def test_a_wrong_or_empty_token_opens_no_session(protected: Server) -> None:
    with _browser(protected) as browser:
        for token in (TOKEN + "x", "", "   "):
            refused = _log_in(browser, token)
            assert refused.status_code == 401
            assert "Wrong token." in refused.text
            assert "set-cookie" not in refused.headers
        assert browser.get("/").status_code == 303
        forged = browser.get("/", headers={"Cookie": f"{COOKIE}={TOKEN}"})
        assert forged.status_code == 303, "only a session the server opened is accepted"


def test_logout_ends_the_session(protected: Server) -> None:
    with _browser(protected) as browser:
        _log_in(browser)
        session = browser.cookies[COOKIE]
        assert 'action="/logout"' in browser.get("/").text
        out = browser.post("/logout")
        assert out.status_code == 303
        assert out.headers["location"] == "/login"
    with _browser(protected) as replay:  # the old cookie, kept by someone else
        assert replay.get("/", headers={"Cookie": f"{COOKIE}={session}"}).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_login_never_redirects_off_site(protected: Server, target: str) -> None:
    with _browser(protected) as browser:
        assert _log_in(browser, next_page=target).headers["location"] == "/"


def test_without_read_auth_the_login_page_sends_home(server: Server) -> None:
    with _browser(server) as browser:
        response = browser.get("/login")
    assert (response.status_code, response.headers["location"]) == (303, "/")
