"""The ``observatory`` command: composition root. Nothing in the package imports it.

Each command group lives in its own module here (exposing ``COMMANDS``) and is listed in
``COMMAND_MODULES``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from observatory.cli.context import App
from observatory.domain import ExitCode
from observatory.errors import ObservatoryError

# Commands load on first use (a CLI call imports only what it runs: `--help` and
# `trigger` stay fast). name -> (modules that register it, one-line help).
COMMAND_MODULES: dict[str, tuple[tuple[str, ...], str]] = {
    "alerts": (("alerts",), "Slack alerts: the outbox and its delivery."),
    "builds": (("builds",), "Gateway builds: list, provision, prune cached venvs."),
    "compare": (("compare",), "Compare a run with its baseline; findings table; exit 0/1/3."),
    "config": (("config",), "Validate a config file and print what it declares."),
    "db": (("db", "compact"), "Database migrations (upgrade, downgrade) and compaction."),
    "demo": (("demo",), "Validate a LiteLLM candidate against the stable release, end to end."),
    "promote": (("promote",), "Mark a build stable (a baseline from now on)."),
    "report": (("report",), "Regenerate a run's HTML report, or the index."),
    "run": (("run",), "Validate a build here and now: baseline first if needed."),
    "runs": (("runs",), "Runs: list, show, cancel, exclude from baselines."),
    "serve": (("serve",), "The service: API, report pages, scheduler, queue worker."),
    "trigger": (("trigger",), "Queue a validation on a running service (CI); --wait to gate."),
    "upstream": (("upstream",), "Serve the mock OpenAI/Anthropic-compatible upstream."),
}

EXIT_CODES_HELP = """Exit codes: 0 pass/success, 1 regression, 2 bad input (usage, config),
3 inconclusive or no baseline, 4 internal error."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMAND_MODULES:
            return None
        found: dict[str, click.Command] = {}
        for module in COMMAND_MODULES[cmd_name][0]:
            for command in importlib.import_module(f"observatory.cli.{module}").COMMANDS:
                found[command.name or ""] = command
        return found.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMAND_MODULES[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, epilog=EXIT_CODES_HELP)
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
