"""`observatory upstream`: serve the mock LLM upstream until Ctrl-C / SIGTERM."""

from __future__ import annotations

import click

from observatory.cli.context import App, pass_app
from observatory.errors import ForbiddenTargetError
from observatory.settings import UpstreamSettings, is_allowed_target


@click.command("upstream")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="0 = any free port.")
@click.option("--seed", type=int, default=None, help="Seed of the latency and fault draws.")
@click.option(
    "--settings-json",
    default=None,
    help="Upstream settings as JSON (default: the config's upstream section).",
)
@pass_app
def upstream(
    app: App, host: str | None, port: int | None, seed: int | None, settings_json: str | None
) -> None:
    """Serve the mock OpenAI/Anthropic-compatible upstream on loopback; prints its URL."""
    settings = _settings(app, settings_json)
    overrides = {"host": host, "port": port, "seed": seed}
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    # The config is only read when it matters, so a child started with --settings-json
    # does not depend on an observatory.yaml in its working directory.
    if not is_allowed_target(settings.host, []) and not is_allowed_target(
        settings.host, app.settings.allowed_targets
    ):
        raise ForbiddenTargetError(
            f"--host {settings.host!r} is neither loopback nor in allowed_targets"
        )
    from observatory.upstream.server import serve  # uvicorn only for this command

    serve(settings)


def _settings(app: App, settings_json: str | None) -> UpstreamSettings:
    if settings_json is None:
        return app.settings.upstream
    from observatory.upstream.server import settings_from_json

    return settings_from_json(settings_json)


COMMANDS = [upstream]
