"""The end of a run: analyse, store the verdict with its alert, write the report.

The findings, the verdict and the outbox alert are written in ONE transaction, so an alert
exists exactly when a verdict does. The report is written afterwards from the database; a
report failure is logged and never changes the verdict.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from observatory.analysis.rundata import RunData
from observatory.analysis.verdict import Analysis, analyse, by_seriousness
from observatory.domain import Finding, RunStatus, Verdict
from observatory.errors import ObservatoryError
from observatory.notify.alert import AlertKind
from observatory.notify.payload import AlertContext, build_alert, kind_for, report_url
from observatory.report.index import render_index
from observatory.report.load import load_index_rows, load_report_input
from observatory.report.render import render_run_report
from observatory.settings import MetricThreshold, Settings
from observatory.store import alerts
from observatory.store import runs as store_runs
from observatory.store.db import transaction
from observatory.store.evidence import load_run_data
from observatory.store.tables import Build, FindingRow, Run, utcnow

if TYPE_CHECKING:
    from observatory.pipeline import Outcome

log = logging.getLogger(__name__)


def conclude_run(
    run_id: int,
    settings: Settings,
    sessions: sessionmaker[Session],
    status: RunStatus,
    reason: str,
    crash: str | None,
    *,
    early_verdict: bool = False,
    run_dir: Path | None = None,
) -> Outcome:
    """Record how the run ended, judge it, alert, report. Never raises for run failures."""
    from observatory.pipeline import Outcome

    _record_end(run_id, sessions, status, reason, crash)
    analysis = None
    if status == RunStatus.DONE:
        try:
            analysis = _analyse(run_id, settings, sessions, early_verdict, reason)
        except ObservatoryError as exc:
            status, reason = RunStatus.ERROR, f"analysis failed: {exc}"
    verdict = _store_verdict(run_id, settings, sessions, status, reason, analysis, crash)
    report = write_report(run_id, settings, sessions, analysis)
    return Outcome(run_id, status, verdict, analysis.reason if analysis else reason, report)


def _record_end(
    run_id: int, sessions: sessionmaker[Session], status: RunStatus, reason: str, crash: str | None
) -> None:
    with transaction(sessions) as session:
        run = store_runs.get_run(session, run_id)
        run.status = RunStatus.ANALYSING if status == RunStatus.DONE else status
        run.end_reason = reason
        run.ended_at = utcnow()
        if crash is not None:
            run.environment = {**run.environment, "crash": crash}


def _analyse(
    run_id: int,
    settings: Settings,
    sessions: sessionmaker[Session],
    early_verdict: bool,
    reason: str,
) -> Analysis:
    with transaction(sessions) as session:
        run = store_runs.get_run(session, run_id)
        candidate = load_run_data(session, run)
        baseline = _baseline_data(session, run)
    overrides = _overrides(settings, run.scenario)
    analysis = analyse(candidate, baseline, settings.thresholds, overrides)
    if early_verdict and analysis.verdict != Verdict.REGRESSION:
        # A crash or a sustained catastrophic error rate is a regression whatever else held.
        analysis = replace(analysis, verdict=Verdict.REGRESSION, reason=reason)
    return analysis


def _baseline_data(session: Session, run: Run) -> RunData | None:
    if run.baseline_run_id is None:
        return None
    base = store_runs.get_run(session, run.baseline_run_id)
    if base.status != RunStatus.DONE:
        return None
    return load_run_data(session, base)


def _overrides(settings: Settings, scenario: str) -> dict[str, MetricThreshold]:
    config = settings.scenarios.get(scenario)
    return dict(config.thresholds) if config is not None else {}


def _store_verdict(
    run_id: int,
    settings: Settings,
    sessions: sessionmaker[Session],
    status: RunStatus,
    reason: str,
    analysis: Analysis | None,
    crash: str | None,
) -> str | None:
    with transaction(sessions) as session:
        run = store_runs.get_run(session, run_id)
        run.status = status
        if analysis is not None:
            run.verdict = analysis.verdict
            run.end_reason = run.end_reason or analysis.reason
            run.verdict_reason = analysis.reason
            replace_findings(session, run_id, analysis.findings)
        context = _alert_context(session, run, settings, reason, analysis, crash)
        if _worth_telling(run, context):
            alerts.enqueue(session, build_alert(context, settings.slack))
        return run.verdict


def _worth_telling(run: Run, context: AlertContext) -> bool:
    """A baseline run is only news when it failed; its verdict is not a release decision."""
    return run.role != "baseline" or context.kind in (AlertKind.ERROR, AlertKind.CRASH)


def replace_findings(session: Session, run_id: int, findings: tuple[Finding, ...]) -> None:
    """Findings of a (re-)analysis replace the previous ones."""
    session.execute(delete(FindingRow).where(FindingRow.run_id == run_id))
    session.add_all(
        FindingRow(run_id=run_id, **{k: getattr(f, k) for k in Finding.__slots__}) for f in findings
    )


def _alert_context(
    session: Session,
    run: Run,
    settings: Settings,
    reason: str,
    analysis: Analysis | None,
    crash: str | None,
) -> AlertContext:
    build = session.get(Build, run.build_id)
    assert build is not None
    base_build = _baseline_build(session, run)
    verdict = Verdict(run.verdict) if run.verdict else None
    kind = kind_for(
        verdict,
        crashed=crash is not None,
        aborted=run.status == RunStatus.ABORTED,
        errored=run.status in (RunStatus.ERROR, RunStatus.INTERRUPTED),
    )
    regressions = [f for f in (analysis.findings if analysis else ()) if f.verdict == "regression"]
    regressions = by_seriousness(regressions)  # in the order of the reason line
    started = run.started_at or run.created_at
    return AlertContext(
        run_id=run.id,
        scenario=run.scenario,
        kind=kind,
        verdict=verdict,
        reason=analysis.reason if analysis else reason,
        build_name=build.name,
        build_version=build.version,
        report_url=report_url(settings.service.public_base_url, run.id),
        build_id=build.id,
        baseline_name=base_build.name if base_build else None,
        baseline_version=base_build.version if base_build else None,
        baseline_run_id=run.baseline_run_id,
        findings=tuple(regressions),
        duration_s=((run.ended_at or utcnow()) - started).total_seconds(),
        end_reason=run.end_reason,
    )


def _baseline_build(session: Session, run: Run) -> Build | None:
    if run.baseline_run_id is None:
        return None
    base = session.get(Run, run.baseline_run_id)
    return session.get(Build, base.build_id) if base is not None else None


def write_report(
    run_id: int,
    settings: Settings,
    sessions: sessionmaker[Session],
    analysis: Analysis | None = None,
) -> Path | None:
    """(Re)write the run's HTML report from the database; log and return None on failure."""
    out_dir = settings.data_dir / "reports"
    try:
        with transaction(sessions) as session:
            limit = settings.thresholds.neighbour_cpu
            inp = load_report_input(session, run_id, analysis, neighbour_cpu=limit)
        path = render_run_report(inp, out_dir)
        with transaction(sessions) as session:
            store_runs.get_run(session, run_id).report_path = str(path)
        write_index(settings, sessions)
    except ObservatoryError as exc:
        log.error("report of run %s not written: %s", run_id, exc)
        return None
    return path


def write_index(settings: Settings, sessions: sessionmaker[Session]) -> Path:
    """Rewrite the static index and release-history pages from the database."""
    out_dir = settings.data_dir / "reports"
    with transaction(sessions) as session:
        rows = load_index_rows(session, out_dir)
    return render_index(rows, out_dir)
