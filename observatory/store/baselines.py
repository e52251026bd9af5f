"""Which earlier run may serve as a candidate's baseline (the `reuse` policy)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from observatory.domain import Channel, RunStatus
from observatory.store.tables import Build, Run, Validation, utcnow

_SCAN = 200  # how many recent matching runs to look at; the newest eligible one wins


def is_stable(build: Build, tag: str | None, stable_tag_pattern: str | None) -> bool:
    """Stable = promoted (channel stable) or released under a tag matching the pattern."""
    if build.channel == Channel.STABLE:
        return True
    return bool(tag and stable_tag_pattern and re.search(stable_tag_pattern, tag))


def find_reusable(
    session: Session,
    *,
    scenario: str,
    config_hash: str,
    host_fingerprint: str,
    max_age_s: float,
    stable_tag_pattern: str | None,
    not_build_id: int,
    now: datetime | None = None,
) -> Run | None:
    """The most recent completed, non-excluded run of a stable build measured alike."""
    since = (now or utcnow()) - timedelta(seconds=max_age_s)
    query = (
        select(Run, Build, Validation.tag)
        .join(Build, Run.build_id == Build.id)
        .outerjoin(Validation, Run.validation_id == Validation.id)
        .where(
            Run.scenario == scenario,
            Run.status == RunStatus.DONE,
            Run.excluded.is_(False),
            Run.config_hash == config_hash,
            Run.host_fingerprint == host_fingerprint,
            Run.build_id != not_build_id,
            Run.ended_at >= since,
        )
        .order_by(Run.ended_at.desc())
        .limit(_SCAN)
    )
    for run, build, tag in session.execute(query).all():
        if is_stable(build, tag, stable_tag_pattern):
            return run
    return None


def latest_stable_build(session: Session, gateway: str, not_build_id: int) -> Build | None:
    """The last stable release of a gateway: the most recently promoted stable build."""
    query = (
        select(Build)
        .where(Build.gateway == gateway, Build.channel == Channel.STABLE, Build.id != not_build_id)
        .order_by(Build.promoted_at.desc().nulls_last(), Build.id.desc())
        .limit(1)
    )
    return session.scalar(query)
