"""`observatory compare RUN [--baseline RUN]`: findings table, stored with the run."""

from __future__ import annotations

import click

from observatory.analysis.verdict import analyse
from observatory.cli.context import App, pass_app
from observatory.conclude import replace_findings
from observatory.domain import Finding, RunStatus, Verdict
from observatory.errors import InputError
from observatory.store import runs as store_runs
from observatory.store.db import transaction
from observatory.store.evidence import load_run_data


@click.command("compare")
@click.argument("run_id", type=int)
@click.option("--baseline", "baseline_id", type=int, default=None, help="Baseline run id.")
@pass_app
def compare(app: App, run_id: int, baseline_id: int | None) -> int:
    """Compare RUN with its baseline (or --baseline) and store the findings and verdict."""
    settings = app.settings
    with transaction(app.sessions) as session:
        run = store_runs.get_run(session, run_id)
        candidate = load_run_data(session, run)
        base_id = baseline_id if baseline_id is not None else run.baseline_run_id
        baseline = None
        if base_id is not None:
            base = store_runs.get_run(session, base_id)
            if base.status != RunStatus.DONE:
                raise InputError(f"--baseline: run {base_id} is {base.status}, not done")
            baseline = load_run_data(session, base)
    config = settings.scenarios.get(run.scenario)
    analysis = analyse(
        candidate, baseline, settings.thresholds, config.thresholds if config else {}
    )
    with transaction(app.sessions) as session:
        row = store_runs.get_run(session, run_id)
        row.verdict = analysis.verdict
        if baseline_id is not None:
            row.baseline_run_id = baseline_id
        replace_findings(session, run_id, analysis.findings)
    click.echo(f"run {run_id} vs {'baseline run ' + str(base_id) if base_id else 'no baseline'}")
    for line in findings_table(analysis.findings):
        click.echo(line)
    click.echo(f"verdict: {analysis.verdict}: {analysis.reason}")
    return int(Verdict(analysis.verdict).exit_code)


def findings_table(findings: tuple[Finding, ...]) -> list[str]:
    header = f"{'METRIC':18} {'NAME':16} {'VERDICT':13} {'BASELINE':>10} {'CANDIDATE':>10} "
    header += f"{'DELTA':>9} {'95% CI':>19} {'P':>7} {'THRESHOLD':>9}"
    lines = [header]
    for f in findings:
        lines.append(
            f"{f.metric:18.18} {f.name:16.16} {f.verdict:13} {_num(f.baseline):>10} "
            f"{_num(f.candidate):>10} {_pct(f.delta):>9} {_ci(f):>19} "
            f"{_num(f.p_value, 3):>7} {_num(f.threshold):>9}"
        )
    return lines


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _ci(f: Finding) -> str:
    if f.ci_low is None or f.ci_high is None:
        return "-"
    return f"[{f.ci_low:+.1%}, {f.ci_high:+.1%}]"


COMMANDS = [compare]
