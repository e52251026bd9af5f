"""Turn what a trigger asked for into a validation and its queued runs.

A validation groups one candidate run per scenario. When the candidate has no eligible
baseline (policy `reuse`) or the policy is `rerun`, a run of the last stable build is queued
first and becomes the candidate's baseline. With `alongside` (the policy, or asked for one
validation) that baseline run is measured at the same time as the candidate, side by side.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from packaging.utils import canonicalize_name
from sqlalchemy import select
from sqlalchemy.orm import Session

from observatory.builds.spec import PipSpec, parse_pip_spec
from observatory.domain import ACTIVE_STATUSES, MAX_ID, RunStatus, TriggerSource
from observatory.environment import measurement_hash
from observatory.errors import InputError
from observatory.plaintext import check_plain
from observatory.settings import BuildSettings, ScenarioSettings, Settings
from observatory.store import baselines, builds, runs
from observatory.store.tables import Build, Run, Validation

MAX_DURATION_S = 7 * 86400.0
BASELINE_CHOICES = ("auto", "none", "alongside")


@dataclass(frozen=True, slots=True)
class ValidationRequest:
    build: str  # a configured build name, or an exact pip spec of an allowed package
    scenarios: tuple[str, ...]
    source: TriggerSource
    duration_s: float | None = None
    tag: str | None = None
    requester: str | None = None
    baseline: str = "auto"  # auto | none | alongside | the id of a run
    schedule: str | None = None
    fire_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    validation_id: int
    run_ids: tuple[int, ...]  # in execution order: baselines first
    candidate_run_ids: tuple[int, ...]
    notes: tuple[str, ...] = field(default=())


def resolve_build(settings: Settings, text: str) -> tuple[str, BuildSettings]:
    """A configured build by name, or an exact version of a package a gateway allows."""
    if text in settings.builds:
        return text, settings.builds[text]
    if "==" not in text:
        known = ", ".join(sorted(settings.builds)) or "none configured"
        raise InputError(
            f"unknown build {text!r}; give a configured build ({known}) "
            "or an exact version such as 'litellm==1.81.9'"
        )
    spec = parse_pip_spec(text)
    gateway_name, package = _gateway_for(settings, spec)
    if spec.extras and spec.extras != package.extras:
        raise InputError(
            f"extras [{','.join(spec.extras)}] are not accepted: a build's extras come from "
            f"the config of gateway {gateway_name!r} ({package.package}"
            f"[{','.join(package.extras)}]); accepted: e.g. '{spec.package}=={spec.version}'"
        )
    full = PipSpec(spec.package, package.extras, spec.version)
    for name, build in settings.builds.items():
        if build.pip is not None and parse_pip_spec(build.pip) == full:
            return name, build
    return str(full), BuildSettings(gateway=gateway_name, pip=str(full))


def _gateway_for(settings: Settings, spec: PipSpec) -> tuple[str, PipSpec]:
    allowed = {}
    for name, gateway in settings.gateways.items():
        package = parse_pip_spec(f"{gateway.package}==0")
        allowed[package.package] = (name, package)
    if spec.package not in allowed:
        accepted = ", ".join(sorted(allowed)) or "none"
        raise InputError(
            f"package {spec.package!r} is not an allowed gateway package; accepted: {accepted}"
        )
    return allowed[canonicalize_name(spec.package)]


def plan(
    session: Session, settings: Settings, request: ValidationRequest, host_fingerprint: str
) -> Plan:
    """Write the validation and its queued runs in the caller's transaction."""
    _check_request(settings, request)
    name, spec = resolve_build(settings, request.build)
    builds.sync_configured(session, settings.builds)  # configured stable builds are baselines
    build = _build_row(session, settings, name, spec)
    validation = Validation(
        build_id=build.id,
        scenarios=list(request.scenarios),
        tag=request.tag,
        requester=request.requester,
        source=request.source,
        parameters={"duration_s": request.duration_s, "baseline": request.baseline},
        schedule=request.schedule,
        fire_time=request.fire_time,
    )
    session.add(validation)
    session.flush()
    order: list[int] = []
    candidates: list[int] = []
    notes: list[str] = []
    for scenario in request.scenarios:
        config = settings.scenario(scenario)
        duration = request.duration_s or config.duration
        measure = measurement_hash(settings, scenario, build.gateway, duration)
        template = _RunTemplate(validation, scenario, config, duration, measure, host_fingerprint)
        queued, note = _plan_scenario(session, settings, request, template, build)
        order.extend(r.id for r in queued)
        candidates.append(queued[-1].id)
        notes.extend([note] if note else [])
    return Plan(validation.id, tuple(order), tuple(candidates), tuple(notes))


def _check_request(settings: Settings, request: ValidationRequest) -> None:
    if not request.scenarios:
        raise InputError("scenarios: give at least one scenario")
    for scenario in request.scenarios:
        settings.scenario(scenario)
    if request.duration_s is not None and not 1 <= request.duration_s <= MAX_DURATION_S:
        raise InputError(f"duration: {request.duration_s:g}s is outside 1s..7d")
    if request.baseline not in BASELINE_CHOICES and not is_run_id(request.baseline):
        accepted = ", ".join(BASELINE_CHOICES)
        raise InputError(f"baseline: {request.baseline!r}; accepted: {accepted}, or a run id")
    check_plain("tag", request.tag)
    check_plain("requester", request.requester)


def is_run_id(text: str) -> bool:
    """True for a run id as text: ASCII digits only, within the database's integer range."""
    return re.fullmatch(r"[0-9]{1,19}", text) is not None and 1 <= int(text) <= MAX_ID


def _build_row(session: Session, settings: Settings, name: str, spec: BuildSettings) -> Build:
    if name in settings.builds:  # configured: its channel comes from the config
        return builds.sync_configured(session, {name: spec})[0]
    kind = "pip" if spec.pip else "command" if spec.command else "url"
    return builds.upsert_build(
        session, name, spec.gateway, spec.resolved_version, kind, spec.source
    )


@dataclass(frozen=True, slots=True)
class _RunTemplate:
    """What the baseline and the candidate run of one scenario share."""

    validation: Validation
    scenario: str
    config: ScenarioSettings
    duration_s: float
    measure: str
    host_fp: str

    def new_run(self, session: Session, build: Build, **extra: object) -> Run:
        config, duration = self.config, self.duration_s
        run = Run(
            validation_id=self.validation.id,
            build_id=build.id,
            scenario=self.scenario,
            profile=config.profile.model_dump(mode="json"),
            duration_s=duration,
            # a shortened run keeps a proportionate warm-up
            warmup_s=config.warmup if config.warmup < duration / 2 else duration * 0.2,
            window_s=config.window,
            parameters={
                "processes": config.processes,
                "params": config.params,
                "phases": [p.model_dump(mode="json") for p in config.phases],
            },
            config_hash=self.measure,
            host_fingerprint=self.host_fp,
            tags=[self.validation.tag] if self.validation.tag else [],
            status=RunStatus.QUEUED,
            **extra,
        )
        session.add(run)
        session.flush()
        return run


def _plan_scenario(
    session: Session,
    settings: Settings,
    request: ValidationRequest,
    template: _RunTemplate,
    build: Build,
) -> tuple[list[Run], str | None]:
    """Queue the scenario's runs, baseline first; return them and a note for the user."""
    scenario = template.scenario
    if request.baseline == "none":
        return [template.new_run(session, build, baseline_request="none")], None
    if is_run_id(request.baseline):
        chosen = runs.get_run(session, int(request.baseline))
        run = template.new_run(session, build, baseline_run_id=chosen.id, baseline_request="run")
        return [run], None
    alongside = request.baseline == "alongside" or (
        request.baseline == "auto" and settings.baseline.policy == "alongside"
    )
    if settings.baseline.policy == "reuse" and not alongside:
        reused = baselines.find_reusable(
            session,
            scenario=scenario,
            config_hash=template.measure,
            host_fingerprint=template.host_fp,
            max_age_s=settings.baseline.max_age,
            stable_tag_pattern=settings.baseline.stable_tag_pattern,
            not_build_id=build.id,
        )
        if reused is not None:
            run = template.new_run(
                session, build, baseline_run_id=reused.id, baseline_request="auto"
            )
            return [run], f"{scenario}: reusing run {reused.id} as the baseline"
    stable = baselines.latest_stable_build(session, build.gateway, build.id)
    if stable is None:
        run = template.new_run(session, build, baseline_request="auto")
        return [run], f"{scenario}: no stable build of {build.gateway} to compare with"
    base = template.new_run(session, stable, role="baseline", baseline_request="none")
    how = "alongside" if alongside else "auto"
    run = template.new_run(session, build, baseline_run_id=base.id, baseline_request=how)
    when = "side by side with the candidate" if alongside else "to run first"
    return [base, run], f"{scenario}: queued {stable.name} as the baseline, {when}"


def find_active_duplicate(
    session: Session, build_name: str, scenarios: Sequence[str], tag: str | None
) -> Validation | None:
    """A validation of the same build, scenarios and tag whose runs are queued or running."""
    active = (RunStatus.QUEUED, *ACTIVE_STATUSES)
    query = (
        select(Validation)
        .join(Build, Validation.build_id == Build.id)
        .join(Run, Run.validation_id == Validation.id)
        .where(Build.name == build_name, Run.status.in_(active))
        .order_by(Validation.id.desc())
    )
    for validation in session.scalars(query).unique():
        if sorted(validation.scenarios) == sorted(scenarios) and validation.tag == tag:
            return validation
    return None
