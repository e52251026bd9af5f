"""Read what a report shows from the store: one run page's input, or the index rows."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from observatory.analysis.changepoint import ChangePoint
from observatory.analysis.rundata import RunData
from observatory.analysis.shared_host import set_aside
from observatory.domain import FaultPhase, Finding, FindingVerdict, RunStatus, Verdict
from observatory.errors import NotFoundError
from observatory.report.model import (
    AnalysisLike,
    BaselineInfo,
    BuildInfo,
    ErrorGroup,
    IndexRow,
    ReportInput,
    RunInfo,
    RunSummary,
    StoredAnalysis,
)
from observatory.report.summary import summarise
from observatory.store import samples
from observatory.store.evidence import load_run_data
from observatory.store.runs import get_run
from observatory.store.tables import (
    Build,
    FaultPhaseRow,
    FindingRow,
    Run,
)

MAX_MESSAGES = 5


def load_report_input(
    session: Session,
    run_id: int,
    analysis: AnalysisLike | None = None,
    *,
    config: Mapping[str, Any] | None = None,
    report_url_prefix: str = "",
    neighbour_cpu: float | None = None,
) -> ReportInput:
    """Everything the page of run ``run_id`` shows; stored findings stand in for ``analysis``.

    ``neighbour_cpu`` is the analysis' limit (``thresholds.neighbour_cpu``): the windows it
    set aside for busy neighbours are shaded in the charts.
    """
    run = get_run(session, run_id)
    candidate = set_aside(load_run_data(session, run), neighbour_cpu)
    baseline_run = _baseline_run(session, run)
    baseline_data = None if baseline_run is None else load_run_data(session, baseline_run)
    return ReportInput(
        run=run_info(run),
        build=build_info(_build(session, run.build_id)),
        analysis=analysis if analysis is not None else stored_analysis(session, run, candidate),
        candidate=candidate,
        baseline=None if baseline_run is None else _baseline_info(session, baseline_run),
        baseline_data=baseline_data,
        errors=error_groups(session, run, _origin(run)),
        config=dict(config) if config is not None else recorded_config(run),
        report_url_prefix=report_url_prefix,
    )


def _build(session: Session, build_id: int) -> Build:
    build = session.get(Build, build_id)
    if build is None:
        raise NotFoundError(f"unknown build id {build_id}")
    return build


def _baseline_run(session: Session, run: Run) -> Run | None:
    if run.baseline_run_id is None:
        return None
    return session.get(Run, run.baseline_run_id)


def run_info(run: Run) -> RunInfo:
    return RunInfo(
        id=run.id,
        scenario=run.scenario,
        status=run.status,
        verdict=run.verdict,
        end_reason=run.end_reason,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration_s=run.duration_s,
        warmup_s=run.warmup_s,
        window_s=run.window_s,
        role=run.role,
        profile=dict(run.profile or {}),
        parameters=dict(run.parameters or {}),
        environment=_environment(run),
        tags=tuple(str(tag) for tag in run.tags or ()),
    )


def _environment(run: Run) -> dict[str, Any]:
    env = dict(run.environment or {})
    if run.host_fingerprint:
        env.setdefault("host_fingerprint", run.host_fingerprint)
    if run.config_hash:
        env.setdefault("config_hash", run.config_hash)
    return env


def build_info(build: Build) -> BuildInfo:
    return BuildInfo(
        name=build.name,
        gateway=build.gateway,
        version=build.version,
        channel=build.channel,
        provision_kind=build.provision_kind,
        created_at=build.created_at,
        promoted_at=build.promoted_at,
    )


def _baseline_info(session: Session, run: Run) -> BaselineInfo:
    return BaselineInfo(
        run_id=run.id,
        build=build_info(_build(session, run.build_id)),
        started_at=run.started_at,
        ended_at=run.ended_at,
        environment=_environment(run),
    )


def recorded_config(run: Run) -> dict[str, Any]:
    """What the run recorded about how it was configured (the config may have changed since)."""
    return {
        "scenario": run.scenario,
        "profile": dict(run.profile or {}),
        "duration_s": run.duration_s,
        "warmup_s": run.warmup_s,
        "window_s": run.window_s,
        "parameters": dict(run.parameters or {}),
        "baseline_request": run.baseline_request,
        "config_hash": run.config_hash,
    }


def _origin(run: Run) -> datetime:
    """Offsets count from the start, or from creation for a run that never started."""
    return run.started_at or run.created_at


def _phases(session: Session, run_id: int) -> tuple[FaultPhase, ...]:
    query = select(FaultPhaseRow).where(FaultPhaseRow.run_id == run_id)
    rows = session.scalars(query.order_by(FaultPhaseRow.start_offset_s)).all()
    return tuple(
        FaultPhase(r.fault, r.start_offset_s, r.duration_s, dict(r.params or {})) for r in rows
    )


def error_groups(session: Session, run: Run, origin: datetime) -> tuple[ErrorGroup, ...]:
    """Failures per (request name, category) with their first sample messages."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in samples.error_messages(session, run.id):
        t = (row.window_start - origin).total_seconds()
        group = groups.setdefault(
            (row.name, row.category), {"count": 0, "first": t, "last": t, "messages": []}
        )
        group["count"] += row.count
        group["last"] = t
        _add_messages(group["messages"], samples.sample_messages(row.messages or []))
    return tuple(
        ErrorGroup(name, category, g["count"], g["first"], g["last"], tuple(g["messages"]))
        for (name, category), g in groups.items()
    )


def _add_messages(kept: list[str], new: Sequence[str]) -> None:
    for text in new:
        if len(kept) >= MAX_MESSAGES:
            return
        if text not in kept:
            kept.append(text)


def stored_findings(session: Session, run_id: int) -> tuple[Finding, ...]:
    query = select(FindingRow).where(FindingRow.run_id == run_id).order_by(FindingRow.id)
    return tuple(_finding(row) for row in session.scalars(query))


def _finding(row: FindingRow) -> Finding:
    return Finding(
        metric=row.metric,
        name=row.name,
        verdict=FindingVerdict(row.verdict),
        baseline=row.baseline,
        candidate=row.candidate,
        delta=row.delta,
        ci_low=row.ci_low,
        ci_high=row.ci_high,
        p_value=row.p_value,
        threshold=row.threshold,
        unit=row.unit or "",
        detail=row.detail or "",
        at_s=row.at_s,
    )


def stored_analysis(session: Session, run: Run, data: RunData) -> StoredAnalysis:
    """The run's verdict and findings as stored; findings with an onset are change points."""
    findings = stored_findings(session, run.id)
    saturated = bool(len(data.windows)) and bool(data.windows["saturated"].any())
    return StoredAnalysis(
        verdict=_verdict(run.verdict),
        reason=run.verdict_reason or run.end_reason or "",
        findings=findings,
        change_points=tuple(_change_point(f) for f in findings if f.at_s is not None),
        saturated=saturated,
    )


def _verdict(value: str | None) -> Verdict | None:
    return Verdict(value) if value in {v.value for v in Verdict} else None


def _change_point(f: Finding) -> ChangePoint:
    at_s = f.at_s if f.at_s is not None else math.nan
    before = f.baseline if f.baseline is not None else math.nan
    after = f.candidate if f.candidate is not None else math.nan
    series = f.metric.removeprefix("change.")  # the analysis stores "change.error_rate"
    return ChangePoint(series, f.name, at_s, before, after, f.unit)


def load_index_rows(session: Session, out_dir: Path | None = None) -> list[IndexRow]:
    """Every run, newest first, with its headline numbers (cached next to its page)."""
    query = select(Run, Build).join(Build, Run.build_id == Build.id).order_by(Run.id.desc())
    return [_index_row(session, run, build, out_dir) for run, build in session.execute(query)]


def _index_row(session: Session, run: Run, build: Build, out_dir: Path | None) -> IndexRow:
    return IndexRow(
        run_id=run.id,
        scenario=run.scenario,
        gateway=build.gateway,
        build=build.name,
        version=build.version,
        channel=build.channel,
        role=run.role,
        status=run.status,
        verdict=run.verdict,
        started_at=run.started_at,
        duration_s=run.duration_s,
        summary=_summary(session, run, out_dir),
        baseline_run_id=run.baseline_run_id,
        tags=tuple(str(tag) for tag in run.tags or ()),
    )


def _summary(session: Session, run: Run, out_dir: Path | None) -> RunSummary:
    if not RunStatus(run.status).finished:
        return RunSummary(None, None, None)
    cached = _cached_summary(run, out_dir)
    if cached is not None:
        return cached
    return summarise(load_run_data(session, run), stored_findings(session, run.id))


def _cached_summary(run: Run, out_dir: Path | None) -> RunSummary | None:
    """The summary written with the run's page, if the run has not changed since."""
    if out_dir is None:
        return None
    path = out_dir / "runs" / str(run.id) / "summary.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    ended = None if run.ended_at is None else run.ended_at.isoformat()
    key = (record.get("status"), record.get("verdict"), record.get("ended_at"))
    if key != (run.status, run.verdict, ended):
        return None
    return RunSummary(
        record.get("p99_ms"), record.get("error_rate"), record.get("memory_slope_mb_h")
    )
