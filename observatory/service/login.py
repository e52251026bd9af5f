"""The browser login of the HTML pages (``service.read_auth``): a token form, a session
cookie (HttpOnly, SameSite=Strict, Secure over https) and logout. Reads only: the API's
writes still need the bearer header."""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import escape

from observatory.service.auth import require_read, state_of, token_matches
from observatory.service.problems import ApiError
from observatory.service.sessions import COOKIE, sessions_of

router = APIRouter(include_in_schema=False)


def require_page_read(request: Request) -> None:
    """``require_read`` for pages: a browser without a session is sent to the login form."""
    try:
        require_read(request)
    except ApiError as exc:
        if exc.status != 401 or "authorization" in request.headers:
            raise
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        location = f"/login?next={quote(target, safe='')}"
        raise ApiError(303, "log in first", headers={"Location": location}) from None


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> Response:
    if not state_of(request).settings.service.read_auth:
        return RedirectResponse("/", status_code=303)  # pages are open: nothing to log in to
    return _form(_local(next), "", 200)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    given = (form.get("token") or [""])[0].strip()
    target = _local((form.get("next") or ["/"])[0])
    token = state_of(request).settings.service.api_token
    if token is None:
        return _form(target, "Reads are disabled: no API token is configured.", 403)
    if not given or not token_matches(given, token.get_secret_value()):
        return _form(target, "Wrong token.", 401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        sessions_of(request).open(),
        max_age=int(sessions_of(request).ttl_s),
        path="/",
        httponly=True,
        samesite="strict",
        secure=_https(request),
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    sessions_of(request).close(request.cookies.get(COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _https(request: Request) -> bool:
    public = state_of(request).settings.service.public_base_url
    return request.url.scheme == "https" or public.startswith("https://")


def _local(target: str) -> str:
    """Only a path on this server: never an open redirect to another site."""
    return target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"


def _form(target: str, problem: str, status: int) -> HTMLResponse:
    message = f"<p role='alert'>{escape(problem)}</p>" if problem else ""
    body = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Log in</title>"
        "<link rel='stylesheet' href='/static/report.css'></head><body><main>"
        f"<h1>Observatory</h1>{message}"
        "<form method='post' action='/login'>"
        "<label>API token <input type='password' name='token' autocomplete='current-password' "
        "required autofocus></label>"
        f"<input type='hidden' name='next' value='{escape(target)}'>"
        "<button type='submit'>Log in</button></form></main></body></html>"
    )
    return HTMLResponse(body, status_code=status)
