"""The Slack adapter: one POST per call, through slack-sdk, classified into a ``Delivery``.

Two targets: an incoming webhook (``WebhookClient``) and a bot token
(``WebClient.chat_postMessage`` to a channel, which can thread follow-ups). slack-sdk's own
retry handlers are switched off: the outbox owns retries, so every attempt is claimed,
counted and spaced. Nothing here ever lets the webhook URL or the token out: slack-sdk
logs through a private logger at WARNING with a redacting filter, and every error text is
redacted before it leaves this module.
"""

from __future__ import annotations

import logging
import math
import re
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import Any, Protocol
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse, WebClient
from slack_sdk.webhook import WebhookClient, WebhookResponse

from observatory.settings import SlackSettings

log = logging.getLogger(__name__)

# Web API "error" codes worth retrying; every other ok:false is a configuration problem
# (invalid_auth, channel_not_found, not_in_channel, invalid_blocks, ...) that no retry fixes.
TRANSIENT_API_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
)
_GENERIC_SECRETS = (
    re.compile(r"xox[a-z]-[A-Za-z0-9-]+"),  # Slack tokens
    re.compile(r"https?://hooks\.slack(?:-gov)?\.com/\S+"),  # webhook URLs
    re.compile(r"/services/T[A-Za-z0-9]+/B[A-Za-z0-9]+/\S+"),  # webhook paths
)
_MAX_ERROR = 300


@dataclass(frozen=True, slots=True)
class Delivery:
    """What one POST achieved. ``error`` is already free of secrets."""

    acknowledged: bool
    retryable: bool = True
    retry_after: float | None = None  # seconds, from a 429's Retry-After
    error: str | None = None
    ts: str | None = None  # the message's ts (bot token only): a thread root
    channel: str | None = None


class SlackTarget(Protocol):
    label: str  # for people: "incoming webhook" or "channel #x"; never a secret
    threads: bool  # whether follow-ups can go into a thread
    channel: str | None  # the configured channel (bot token); None for a webhook

    def post(self, payload: Mapping[str, Any], thread_ts: str | None = None) -> Delivery: ...


class Redactor:
    """Replaces known secrets (and anything shaped like a Slack secret) with ``<redacted>``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a URL is replaced whole before its path is.
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        for pattern in _GENERIC_SECRETS:
            text = pattern.sub("<redacted>", text)
        return text


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redact(record.getMessage())
        record.args = None
        return True


def make_target(settings: SlackSettings) -> SlackTarget | None:
    """The configured target (a bot token wins over a webhook), or None when unconfigured."""
    if settings.token is not None and settings.channel:
        token = settings.token.get_secret_value()
        return BotTarget(token, settings.channel, settings.api_url, settings.timeout)
    if settings.webhook_url is not None:
        return WebhookTarget(settings.webhook_url.get_secret_value(), settings.timeout)
    return None


class WebhookTarget:
    """An incoming webhook: one fixed channel, no threads, no message ts."""

    label: str = "incoming webhook"
    threads: bool = False
    channel: str | None = None

    def __init__(self, url: str, timeout: float) -> None:
        path = urlsplit(url)
        self._redact = Redactor([url, path.path + ("?" + path.query if path.query else "")])
        self._timeout = timeout
        self._client = WebhookClient(
            url=url,
            timeout=_whole_seconds(timeout),
            logger=_sdk_logger(self._redact),
            retry_handlers=[],
        )

    def post(self, payload: Mapping[str, Any], thread_ts: str | None = None) -> Delivery:
        try:
            response = self._client.send_dict(dict(payload))
        except (OSError, HTTPException, SlackClientError, ValueError) as exc:
            return _from_exception(exc, self._timeout, self._redact)
        return _from_webhook(response, self._redact)


class BotTarget:
    """A bot token posting with chat.postMessage to one channel; follow-ups can thread."""

    threads: bool = True

    def __init__(self, token: str, channel: str, api_url: str, timeout: float) -> None:
        self.label = f"channel {channel}"
        self.channel: str | None = channel
        self._redact = Redactor([token])
        self._timeout = timeout
        self._client = WebClient(
            token=token,
            base_url=api_url,
            timeout=_whole_seconds(timeout),
            logger=_sdk_logger(self._redact),
            retry_handlers=[],
        )

    def post(self, payload: Mapping[str, Any], thread_ts: str | None = None) -> Delivery:
        channel = self.channel or ""
        try:
            response = self._client.chat_postMessage(
                channel=channel,
                text=str(payload.get("text", "")),
                blocks=list(payload.get("blocks") or []),
                thread_ts=thread_ts,
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as exc:
            return _from_api_error(exc.response, self._redact)
        except (OSError, HTTPException, SlackClientError, ValueError) as exc:
            return _from_exception(exc, self._timeout, self._redact)
        ts = response.get("ts")
        return Delivery(acknowledged=True, ts=str(ts) if ts else None, channel=channel)


def _from_webhook(response: WebhookResponse, redact: Redactor) -> Delivery:
    status = response.status_code
    if 200 <= status < 300:
        return Delivery(acknowledged=True)
    body = redact(str(response.body or "").strip())[:_MAX_ERROR]
    error = f"HTTP {status}" + (f": {body}" if body else "")
    if status == 429:
        return Delivery(False, retry_after=retry_after(response.headers), error=error)
    # 408 and 5xx are Slack's trouble; other 4xx (invalid_payload, no_service,
    # channel_is_archived) are ours and no retry fixes them.
    return Delivery(False, retryable=status == 408 or status >= 500, error=error)


def _from_api_error(response: SlackResponse, redact: Redactor) -> Delivery:
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    code = str(data.get("error") or "no error code")
    error = redact(f"HTTP {status}: {code}")[:_MAX_ERROR]
    if status == 429 or code == "ratelimited":
        return Delivery(False, retry_after=retry_after(response.headers), error=error)
    transient = status >= 500 or status == 408 or code in TRANSIENT_API_ERRORS
    return Delivery(False, retryable=transient, error=error)


def _from_exception(exc: BaseException, timeout: float, redact: Redactor) -> Delivery:
    if _is_timeout(exc):
        # The request may have reached Slack: this is the one way an alert can arrive twice.
        error = f"timeout: no answer within {timeout:g}s (the message may still have arrived)"
        return Delivery(False, error=error)
    permanent = isinstance(exc, SlackClientError | ValueError)
    message = redact(f"{type(exc).__name__}: {exc}")[:_MAX_ERROR]
    return Delivery(False, retryable=not permanent, error=message)


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, URLError) and isinstance(exc.reason, BaseException):
        return _is_timeout(exc.reason)
    return isinstance(exc, TimeoutError | socket.timeout)


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _whole_seconds(timeout: float) -> int:
    # slack-sdk types its timeout as int; never round a short timeout down to "no timeout".
    return max(1, math.ceil(timeout))


def _sdk_logger(redact: Redactor) -> logging.Logger:
    """A private logger for one slack-sdk client: WARNING and above, redacted.

    slack-sdk logs the full request URL (the webhook's secret) at DEBUG whenever its logger's
    own level is unset; a logger outside the registry, parented to ours, keeps that out of
    every handler and is garbage-collected with the client.
    """
    logger = logging.Logger(f"{__name__}.sdk", logging.WARNING)
    logger.parent = log
    logger.addFilter(_RedactingFilter(redact))
    return logger
