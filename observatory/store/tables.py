"""SQLAlchemy 2 typed tables. alembic/env.py imports ``Base.metadata``.

After the first release, schema changes are only ever new Alembic revisions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both SQLite (naive storage) and Postgres."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the store keeps UTC-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Build(Base):
    __tablename__ = "builds"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    gateway: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(100))
    provision_kind: Mapped[str] = mapped_column(String(20))  # pip | command | url
    provision: Mapped[str] = mapped_column(Text)  # the pip spec, command template or URL
    channel: Mapped[str] = mapped_column(String(20), default="candidate")
    promoted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Validation(Base):
    __tablename__ = "validations"
    __table_args__ = (
        UniqueConstraint("schedule", "fire_time", name="uq_validations_schedule_fire"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id"))
    scenarios: Mapped[list[Any]]
    tag: Mapped[str | None] = mapped_column(String(200))
    requester: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20))  # cli | api | schedule | ci
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    schedule: Mapped[str | None] = mapped_column(String(200))
    fire_time: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    validation_id: Mapped[int | None] = mapped_column(ForeignKey("validations.id"))
    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id"))
    scenario: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="candidate")  # candidate | baseline
    profile: Mapped[dict[str, Any]]
    duration_s: Mapped[float] = mapped_column(Float)
    warmup_s: Mapped[float] = mapped_column(Float)
    window_s: Mapped[float] = mapped_column(Float)
    baseline_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    baseline_request: Mapped[str | None] = mapped_column(
        String(50)
    )  # auto | none | run | alongside
    status: Mapped[str] = mapped_column(String(20), default="queued")
    verdict: Mapped[str | None] = mapped_column(String(20))
    end_reason: Mapped[str | None] = mapped_column(Text)  # how the run ended
    verdict_reason: Mapped[str | None] = mapped_column(Text)  # the analysis' one line
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    environment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    host_fingerprint: Mapped[str | None] = mapped_column(String(64))
    config_hash: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[Any]] = mapped_column(default=list)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    report_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]


class WindowRow(Base):
    __tablename__ = "windows"
    __table_args__ = (UniqueConstraint("run_id", "series", "name", "start", name="uq_windows_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    series: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    start: Mapped[datetime]
    length_s: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    histogram: Mapped[str] = mapped_column(Text)
    p50: Mapped[float] = mapped_column(Float)
    p90: Mapped[float] = mapped_column(Float)
    p95: Mapped[float] = mapped_column(Float)
    p99: Mapped[float] = mapped_column(Float)
    p999: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    saturated: Mapped[bool] = mapped_column(Boolean, default=False)


class ErrorSampleRow(Base):
    __tablename__ = "error_samples"
    __table_args__ = (
        UniqueConstraint("run_id", "name", "window_start", "category", name="uq_error_samples_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    window_start: Mapped[datetime]
    category: Mapped[str] = mapped_column(String(60))
    count: Mapped[int] = mapped_column(Integer)
    messages: Mapped[list[Any]] = mapped_column(default=list)


class ResourceSampleRow(Base):
    __tablename__ = "resource_samples"
    __table_args__ = (UniqueConstraint("run_id", "role", "at", name="uq_resource_samples_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    at: Mapped[datetime]
    role: Mapped[str] = mapped_column(String(20))
    rss_mb: Mapped[float | None] = mapped_column(Float)
    uss_mb: Mapped[float | None] = mapped_column(Float)
    cpu_percent: Mapped[float | None] = mapped_column(Float)
    threads: Mapped[int | None] = mapped_column(Integer)
    fds: Mapped[int | None] = mapped_column(Integer)
    connections: Mapped[int | None] = mapped_column(Integer)
    processes: Mapped[int | None] = mapped_column(Integer)
    log_bytes: Mapped[int | None] = mapped_column(BigInteger)


class FaultPhaseRow(Base):
    __tablename__ = "fault_phases"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    fault: Mapped[str] = mapped_column(String(60))
    start_offset_s: Mapped[float] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    measured: Mapped[dict[str, Any]] = mapped_column(default=dict)


class FindingRow(Base):
    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    metric: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200))
    verdict: Mapped[str] = mapped_column(String(20))
    baseline: Mapped[float | None] = mapped_column(Float)
    candidate: Mapped[float | None] = mapped_column(Float)
    delta: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    at_s: Mapped[float | None] = mapped_column(Float)


class AlertRow(Base):
    """The outbox: written in the verdict's transaction, delivered by a loop."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"))
    build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id"))
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    thread_ts: Mapped[str | None] = mapped_column(String(60))
    channel: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
