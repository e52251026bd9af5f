"""Rows as API bodies: runs, validations, builds; report locations."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from observatory.domain import RunStatus
from observatory.notify.payload import report_url
from observatory.service.overall import RunState, overall
from observatory.service.schemas import BuildView, RunView, ValidationView
from observatory.settings import Settings
from observatory.store.tables import Build, Run, Validation, utcnow

CANDIDATE = "candidate"


def reports_dir(settings: Settings) -> Path:
    """Where conclude.write_report puts the static report tree."""
    return settings.data_dir / "reports"


def report_file(settings: Settings, run_id: int, name: str = "index.html") -> Path:
    return reports_dir(settings) / "runs" / str(run_id) / name


def base_url(settings: Settings) -> str:
    return settings.service.public_base_url.rstrip("/")


def elapsed_s(run: Run) -> float | None:
    if run.started_at is None:
        return None
    return ((run.ended_at or utcnow()) - run.started_at).total_seconds()


def waiting_reason(run: Run, host_fingerprint: str | None) -> str | None:
    """Why a queued run is not claimed by this service's workers, if it never will be."""
    if run.status != RunStatus.QUEUED:
        return None
    if run.claimed_by:
        return f"held by {run.claimed_by}, which executes it itself (observatory run)"
    planned = run.host_fingerprint
    if host_fingerprint and planned and planned != host_fingerprint:
        return (
            f"planned on a host with fingerprint {planned[:12]}, but this host's is "
            f"{host_fingerprint[:12]}: only a worker on a host like the one that planned it "
            "claims it; cancel it and queue it again to run it here"
        )
    return None


def run_view(
    run: Run, build: Build, settings: Settings, host_fingerprint: str | None = None
) -> RunView:
    return RunView(
        id=run.id,
        validation_id=run.validation_id,
        scenario=run.scenario,
        role=run.role,
        build=build.name,
        build_version=build.version,
        status=run.status,
        verdict=run.verdict,
        end_reason=run.end_reason,
        verdict_reason=run.verdict_reason,
        progress=dict(run.progress or {}),
        elapsed_s=elapsed_s(run),
        duration_s=run.duration_s,
        baseline_run_id=run.baseline_run_id,
        claimed_by=run.claimed_by,
        lease_until=run.lease_until,
        cancel_requested=run.cancel_requested,
        waiting_reason=waiting_reason(run, host_fingerprint),
        tags=list(run.tags or []),
        created_at=run.created_at,
        started_at=run.started_at,
        ended_at=run.ended_at,
        report_url=report_url(base_url(settings), run.id),
        report_ready=report_file(settings, run.id).is_file(),
        windows_csv_url=f"{base_url(settings)}/runs/{run.id}/windows.csv",
    )


def validation_view(
    validation: Validation,
    build: Build,
    runs: Sequence[tuple[Run, Build]],
    settings: Settings,
    *,
    with_runs: bool,
) -> ValidationView:
    states = [RunState(r.status, r.verdict, r.role == CANDIDATE) for r, _ in runs]
    summary = overall(states)
    return ValidationView(
        id=validation.id,
        build=build.name,
        scenarios=list(validation.scenarios),
        tag=validation.tag,
        source=validation.source,
        requester=validation.requester,
        schedule=validation.schedule,
        fire_time=validation.fire_time,
        created_at=validation.created_at,
        status=summary.status,
        verdict=summary.verdict,
        exit_code=summary.exit_code,
        candidate_run_ids=[r.id for r, _ in runs if r.role == CANDIDATE],
        runs=[run_view(r, b, settings) for r, b in runs] if with_runs else None,
    )


def build_view(build: Build) -> BuildView:
    return BuildView(
        name=build.name,
        gateway=build.gateway,
        version=build.version,
        channel=build.channel,
        provision_kind=build.provision_kind,
        promoted_at=build.promoted_at,
        created_at=build.created_at,
    )
