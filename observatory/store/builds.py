"""Repository functions for builds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from observatory.domain import Channel
from observatory.errors import NotFoundError
from observatory.settings import BuildSettings
from observatory.store.tables import Build, utcnow


def upsert_build(
    session: Session, name: str, gateway: str, version: str, kind: str, provision: str
) -> Build:
    """Return the build called ``name``, creating it; the channel is never downgraded here."""
    build = session.scalar(select(Build).where(Build.name == name))
    if build is None:
        build = Build(
            name=name, gateway=gateway, version=version, provision_kind=kind, provision=provision
        )
        session.add(build)
        session.flush()
    return build


def sync_configured(session: Session, builds: Mapping[str, BuildSettings]) -> list[Build]:
    """Make sure every build declared in the config has a row; stable ones are stable."""
    rows = []
    for name, spec in builds.items():
        kind, provision = _provision(spec)
        row = upsert_build(session, name, spec.gateway, spec.resolved_version, kind, provision)
        if spec.channel == Channel.STABLE and row.channel != Channel.STABLE:
            row.channel = Channel.STABLE
            row.promoted_at = row.promoted_at or utcnow()
        rows.append(row)
    return rows


def _provision(spec: BuildSettings) -> tuple[str, str]:
    if spec.pip is not None:
        return "pip", spec.pip
    if spec.command is not None:
        return "command", spec.command
    return "url", spec.source  # credentials redacted: the real URL stays in the config


def list_builds(session: Session) -> Sequence[Build]:
    return session.scalars(select(Build).order_by(Build.gateway, Build.created_at)).all()


def get_build(session: Session, name: str) -> Build:
    build = session.scalar(select(Build).where(Build.name == name))
    if build is None:
        known = ", ".join(b.name for b in list_builds(session)) or "none"
        raise NotFoundError(f"unknown build {name!r}; known: {known}")
    return build


def promote(session: Session, name: str) -> Build:
    """Mark a build stable (a baseline candidate from now on)."""
    build = get_build(session, name)
    build.channel = Channel.STABLE
    build.promoted_at = utcnow()
    return build


def labels(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Build id -> "name version" for these ids."""
    wanted = set(ids)
    if not wanted:
        return {}
    builds = session.scalars(select(Build).where(Build.id.in_(wanted))).all()
    return {b.id: f"{b.name} {b.version}" for b in builds}
