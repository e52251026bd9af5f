"""`observatory compare RUN [--baseline RUN]`: findings table, stored with the run."""

from __future__ import annotations

import click

from observatory.analysis.bursts import find_bursts
from observatory.analysis.verdict import analyse
from observatory.cli.context import App, pass_app
from observatory.conclude import replace_findings
from observatory.domain import Finding, RunStatus, Verdict
from observatory.errors import InputError
from observatory.report.findings import finding_rows
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
        row.verdict_reason = analysis.reason
        if baseline_id is not None:
            row.baseline_run_id = baseline_id
        replace_findings(session, run_id, analysis.findings)
    click.echo(f"run {run_id} vs {'baseline run ' + str(base_id) if base_id else 'no baseline'}")
    for line in findings_table(analysis.findings):
        click.echo(line)
    for series in find_bursts(candidate):
        failures = sum(b.failures for b in series.bursts)
        click.echo(f"error bursts of {series.name}: {failures} failures {series.describe()}")
    click.echo(f"verdict: {analysis.verdict}: {analysis.reason}")
    return int(Verdict(analysis.verdict).exit_code)


def findings_table(findings: tuple[Finding, ...]) -> list[str]:
    """The report's findings table as text: same order, same units."""
    header = ("VERDICT", "METRIC", "NAME", "BASELINE", "CANDIDATE", "DELTA", "95% CI", "P", "LIMIT")
    rows = [header] + [
        (
            r.verdict,
            r.metric,
            r.name,
            r.baseline,
            r.candidate,
            r.delta,
            r.interval,
            r.p_value,
            r.threshold,
        )
        for r in finding_rows(findings)
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]


COMMANDS = [compare]
