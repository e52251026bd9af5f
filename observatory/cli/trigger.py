"""`observatory trigger`: ask a running service to validate a build (for CI).

Prints the validation id and the report URL of each candidate run. With ``--wait`` it polls
until every run ended and exits by the project convention: 0 pass, 1 regression, 2 bad
input, 3 inconclusive or no baseline, 4 internal error, cancelled run or timeout. The token
comes from an environment variable, never from the command line (argv is visible to every
user of the host and lands in CI logs).
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import click

from observatory.domain import ExitCode
from observatory.durations import format_duration, parse_duration
from observatory.errors import InputError
from observatory.service.client import ApiClient, ApiUnavailableError, Submitted

STATUS_EVERY_S = 300.0  # a status line at least this often while waiting, and on changes


@click.command("trigger")
@click.option("--server", required=True, envvar="OBSERVATORY_SERVER", help="Service base URL.")
@click.option("--build", required=True, help="Configured build name or e.g. 'litellm==1.81.9'.")
@click.option("--scenario", "scenarios", multiple=True, required=True, help="Repeatable.")
@click.option("--tag", default=None, help="Release tag, e.g. v1.81.9.")
@click.option("--duration", default=None, help="Override the scenarios' duration, e.g. 5m.")
@click.option(
    "--baseline",
    default="auto",
    show_default=True,
    help="auto, none, alongside (the stable build side by side with BUILD) or a run id.",
)
@click.option("--wait", is_flag=True, help="Wait for the verdict and exit by it.")
@click.option("--timeout", default="26h", show_default=True, help="Give up waiting after this.")
@click.option("--poll", default="15s", show_default=True, help="Poll interval while waiting.")
@click.option(
    "--token-env",
    default="OBSERVATORY_API_TOKEN",
    show_default=True,
    help="Environment variable holding the API token.",
)
def trigger(
    server: str,
    build: str,
    scenarios: tuple[str, ...],
    tag: str | None,
    duration: str | None,
    baseline: str,
    wait: bool,
    timeout: str,
    poll: str,
    token_env: str,
) -> int:
    """Queue a validation of BUILD on the observatory at SERVER."""
    _check_server(server)
    timeout_s = _duration("--timeout", timeout)
    poll_s = _duration("--poll", poll)
    token = os.environ.get(token_env, "").strip() or None
    body = _body(build, scenarios, tag, duration, baseline)
    with ApiClient(server, token) as client:
        submitted = client.submit(body)
        _announce(submitted, client.server)
        if not wait:
            return int(ExitCode.OK)
        return _wait(client, submitted.validation_id, timeout_s, poll_s)


def _check_server(server: str) -> None:
    parts = urlsplit(server)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            "--server: not a URL; accepted: http://HOST[:PORT] or https://HOST[:PORT], "
            "e.g. http://observatory:8700"
        )


def _duration(option: str, text: str) -> float:
    try:
        return parse_duration(text)
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None


def _body(
    build: str, scenarios: tuple[str, ...], tag: str | None, duration: str | None, baseline: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "build": build,
        "scenarios": list(scenarios),
        "baseline": baseline,
        "requester": _requester(),
        "source": "ci" if os.environ.get("CI") else "api",
    }
    if tag is not None:
        body["tag"] = tag
    if duration is not None:
        body["duration"] = duration
    return body


def _requester() -> str:
    actor = os.environ.get("GITHUB_ACTOR")
    if actor:
        return f"{actor} (CI)"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _announce(submitted: Submitted, server: str) -> None:
    vid = submitted.validation_id
    if submitted.duplicate:
        click.echo(f"validation {vid}: the same build, scenarios and tag are already queued")
        click.echo(f"status: {server}/api/v1/validations/{vid}")
        return
    body = submitted.body
    click.echo(f"validation {vid}: runs {', '.join(map(str, body.get('run_ids', [])))} queued")
    for note in body.get("notes", []):
        click.echo(f"  {note}")
    for url in body.get("report_urls", []):
        click.echo(f"report: {url}")
    click.echo(f"status: {body.get('status_url', f'{server}/api/v1/validations/{vid}')}")


def _wait(client: ApiClient, validation_id: int, timeout_s: float, poll_s: float) -> int:
    started = time.monotonic()
    last_line, last_at = "", 0.0
    while time.monotonic() - started < timeout_s:
        try:
            view = client.validation(validation_id)
        except ApiUnavailableError as exc:
            click.echo(f"warning: {exc}; retrying", err=True)
            view = None
        if view is not None and view.get("status") == "finished":
            return _finish(view)
        if view is not None:
            line = _status_line(view)
            now = time.monotonic()
            if line != last_line or now - last_at >= STATUS_EVERY_S:
                elapsed = format_duration(round(now - started))
                click.echo(f"[{elapsed}] {line}")
                last_line, last_at = line, now
        time.sleep(min(poll_s, max(0.0, timeout_s - (time.monotonic() - started))))
    click.echo(
        f"timed out after {format_duration(timeout_s)}: validation {validation_id} is not "
        f"finished; follow it at {client.server}/api/v1/validations/{validation_id}",
        err=True,
    )
    return int(ExitCode.INTERNAL)


def _status_line(view: dict[str, Any]) -> str:
    parts = [f"validation {view['id']}: {view['status']}"]
    for run in view.get("runs") or []:
        progress = run.get("progress") or {}
        text = f"run {run['id']} {run['scenario']} ({run['role']}) {run['status']}"
        elapsed = progress.get("elapsed_s")
        if run["status"] == "running" and elapsed is not None and run.get("duration_s"):
            text += f" {min(100.0, 100.0 * elapsed / run['duration_s']):.0f}%"
        parts.append(text)
    return "; ".join(parts)


def _finish(view: dict[str, Any]) -> int:
    for run in view.get("runs") or []:
        if run.get("role") != "candidate":
            continue
        verdict = run.get("verdict") or "no verdict"
        reason = run.get("verdict_reason") or run.get("end_reason")
        why = f" ({reason})" if reason else ""
        click.echo(f"run {run['id']} {run['scenario']}: {run['status']}, {verdict}{why}")
        click.echo(f"  report: {run['report_url']}")
    code = view.get("exit_code")
    click.echo(f"validation {view['id']}: {view.get('verdict')} (exit {code})")
    return int(code) if isinstance(code, int) else int(ExitCode.INTERNAL)


COMMANDS = [trigger]
