"""`observatory config check [FILE]`."""

from __future__ import annotations

from pathlib import Path

import click

from observatory.cli.context import App, pass_app
from observatory.durations import format_duration
from observatory.settings import Settings, check_targets, load_settings


@click.group("config")
def config_group() -> None:
    """Inspect the configuration."""


@config_group.command("check")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@pass_app
def check(app: App, file: Path | None) -> None:
    """Validate FILE (default: the active config) and print what it declares."""
    settings = load_settings(file) if file is not None else app.settings
    check_targets(settings)
    for line in describe(settings):
        click.echo(line)


def describe(settings: Settings) -> list[str]:
    database = "postgres (from URL)" if settings.database_url else f"sqlite in {settings.data_dir}"
    lines = [f"database: {database}", f"data dir: {settings.data_dir}"]
    lines.append(f"gateways: {', '.join(sorted(settings.gateways)) or '-'}")
    for name, build in sorted(settings.builds.items()):
        lines.append(
            f"build {name}: {build.gateway} {build.resolved_version} [{build.channel}] "
            f"{build.source}"
        )
    for name, sc in sorted(settings.scenarios.items()):
        profile = sc.profile
        load = (
            f"{profile.users} users"
            if profile.model == "closed"
            else f"{profile.rate:g} req/s {profile.arrival}"
        )
        lines.append(
            f"scenario {name}: {sc.file}, {profile.model} model {load}, "
            f"{format_duration(sc.duration)} (warm-up {format_duration(sc.warmup)}), "
            f"{len(sc.phases)} fault phase(s)"
        )
    for name, sched in sorted(settings.schedules.items()):
        when = sched.cron or f"every {format_duration(sched.interval or 0)}"
        lines.append(f"schedule {name}: {when} -> {sched.build} x {', '.join(sched.scenarios)}")
    max_age = format_duration(settings.baseline.max_age)
    lines.append(f"baseline: {settings.baseline.policy}, max age {max_age}")
    slack = "configured" if settings.slack.configured else "not configured (alerts are logged)"
    lines.append(f"slack: {slack}")
    lines.append(f"allowed targets: loopback{''.join(', ' + t for t in settings.allowed_targets)}")
    lines.append("ok")
    return lines


COMMANDS = [config_group]
