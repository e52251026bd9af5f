"""The ``observatory`` command: composition root. Nothing in the package imports it.

Each command group lives in its own module here and is listed in ``COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from observatory.cli.context import App
from observatory.domain import ExitCode
from observatory.errors import ObservatoryError

COMMAND_MODULES = (
    "db",
    "config",
    "builds",
    "runs",
    "run",
    "compare",
    "promote",
    "demo",
    "upstream",
    "alerts",
    "report",
    "serve",
    "trigger",
    "compact",
)

EXIT_CODES_HELP = """Exit codes: 0 pass/success, 1 regression, 2 bad input (usage, config),
3 inconclusive or no baseline, 4 internal error."""


@click.group(epilog=EXIT_CODES_HELP)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Config file (default: $OBSERVATORY_CONFIG or ./observatory.yaml).",
)
@click.version_option(package_name="observatory")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None) -> None:
    """Observatory: long-running release validation for LLM gateways."""
    ctx.obj = App(config_path)


for _module in COMMAND_MODULES:
    for _command in importlib.import_module(f"observatory.cli.{_module}").COMMANDS:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI and map every failure onto the project's exit codes."""
    code = _invoke(argv)
    sys.exit(int(code))


def _invoke(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="observatory", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return ExitCode.INTERNAL
    except click.ClickException as exc:
        exc.show()
        return ExitCode.BAD_INPUT if exc.exit_code == 2 else exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except ObservatoryError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    return int(result) if isinstance(result, int) else ExitCode.OK
