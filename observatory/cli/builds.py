"""`observatory builds list | provision | prune`."""

from __future__ import annotations

import click

from observatory.builds.spec import PipSpec, parse_pip_spec
from observatory.builds.venv import ensure_venv, prune, venv_key
from observatory.cli.context import App, pass_app
from observatory.durations import format_duration, parse_duration
from observatory.errors import InputError
from observatory.settings import Settings
from observatory.store import builds as store_builds
from observatory.store.db import transaction


@click.group("builds")
def builds_group() -> None:
    """Gateway builds: configured and seen."""


@builds_group.command("list")
@pass_app
def list_cmd(app: App) -> None:
    """List builds (configured ones are registered on the way)."""
    with transaction(app.sessions) as session:
        store_builds.sync_configured(session, app.settings.builds)
        rows = store_builds.list_builds(session)
        click.echo(f"{'NAME':30} {'GATEWAY':10} {'VERSION':12} {'CHANNEL':10} SOURCE")
        for b in rows:
            click.echo(
                f"{b.name:30} {b.gateway:10} {b.version:12} {b.channel:10} {b.provision_kind}"
            )


@builds_group.command("provision")
@click.argument("build")
@pass_app
def provision_cmd(app: App, build: str) -> None:
    """Install a pip build into the venv cache and print the venv's path.

    BUILD is a configured build with a pip spec, or a pip spec such as
    'litellm[proxy]==1.81.9' (exact versions only). Progress goes to stderr.
    """
    spec = _spec_of(app.settings, build)
    path = ensure_venv(
        spec, app.settings.cache_dir, progress=lambda line: click.echo(line, err=True)
    )
    click.echo(str(path))


@builds_group.command("prune")
@click.option(
    "--older-than",
    default="14d",
    show_default=True,
    help="Remove venvs not used for this long (e.g. 36h, 14d, 0s for all).",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@pass_app
def prune_cmd(app: App, older_than: str, dry_run: bool) -> None:
    """Remove cached venvs no configured build uses and nobody used recently."""
    age = parse_duration(older_than)
    keep = {venv_key(_spec_of(app.settings, name)) for name in _pip_builds(app.settings)}
    removed = prune(app.settings.cache_dir, keep=keep, older_than=age, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for venv in removed:
        used = venv.last_used.strftime("%Y-%m-%d %H:%M")
        click.echo(f"{verb} {venv.key}  {_mib(venv.size_bytes)}  last used {used}")
    freed = _mib(sum(v.size_bytes for v in removed))
    summary = f"to remove; would free {freed}" if dry_run else f"removed; freed {freed}"
    click.echo(
        f"{len(removed)} venv(s) {summary} "
        f"(kept configured builds and venvs used within {format_duration(age)})"
    )


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _pip_builds(settings: Settings) -> list[str]:
    return [name for name, build in settings.builds.items() if build.pip is not None]


def _spec_of(settings: Settings, build: str) -> PipSpec:
    configured = settings.builds.get(build)
    if configured is not None:
        if configured.pip is None:
            raise InputError(f"build {build!r} is not a pip build; only pip builds are provisioned")
        return parse_pip_spec(configured.pip)
    if "==" in build or "[" in build or "<" in build or ">" in build:
        return parse_pip_spec(build)
    known = ", ".join(_pip_builds(settings)) or "none configured"
    raise InputError(
        f"unknown build {build!r}; configured pip builds: {known}; "
        "or give a pip spec such as 'litellm[proxy]==1.81.9'"
    )


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"


COMMANDS = [builds_group]
