"""Schedules: APScheduler fires the config's cron and interval schedules into the queue.

Idempotent across hosts: a fire's validation carries ``(schedule, fire_time)``, unique in
the database, and every host computes the same fire times (cron in UTC; intervals anchored
at the Unix epoch, not at each host's start), so when several hosts run schedulers on one
database exactly one validation exists per fire; the losers see the unique constraint and
log it.

Misfires (documented in docs/operations.md): a fire missed while the service was down runs
once at start-up when it is less than ``MISFIRE_GRACE_S`` old (only the latest one:
coalesced); older missed fires are skipped and logged. A schedule that never fired yet
(just added to the config) waits for its next fire time. While running, APScheduler applies
the same policy (``coalesce=True``, ``misfire_grace_time``). A fire is skipped (and logged)
when the same build, scenarios and tag are still queued or running, so a 24-hour soak
scheduled daily never piles up.

``build: newest-candidate`` names the most recently created build of channel ``candidate``
(configured, or submitted through the API/CLI as an exact version), over all gateways.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import Channel, TriggerSource
from observatory.errors import InputError, StoreError
from observatory.settings import ScheduleSettings, Settings
from observatory.store.db import transaction
from observatory.store.tables import Build, Validation, utcnow
from observatory.validation import ValidationRequest, find_active_duplicate, plan, resolve_build

log = logging.getLogger(__name__)

MISFIRE_GRACE_S = 3600.0
NEWEST_CANDIDATE = "newest-candidate"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SCAN = 100_000  # bound on fire times walked when counting skipped fires


def trigger_for(schedule: ScheduleSettings) -> BaseTrigger:
    """The same trigger on every host: cron in UTC, intervals anchored at the epoch."""
    if schedule.cron is not None:
        return CronTrigger.from_crontab(schedule.cron, timezone=UTC)
    assert schedule.interval is not None
    return IntervalTrigger(seconds=schedule.interval, start_date=EPOCH, timezone=UTC)


def fire_times(trigger: BaseTrigger, after: datetime, until: datetime) -> Iterator[datetime]:
    """Fire times t with after <= t <= until, oldest first (at most _MAX_SCAN of them)."""
    previous: datetime | None = None
    moment = after
    for _ in range(_MAX_SCAN):
        fire: datetime | None = trigger.get_next_fire_time(previous, moment)
        if fire is None or fire > until:
            return
        yield fire.astimezone(UTC)
        previous, moment = fire, fire + timedelta(microseconds=1)


def latest_fire(trigger: BaseTrigger, now: datetime, grace_s: float) -> datetime | None:
    """The newest fire time in the last ``grace_s`` seconds (the coalesced one)."""
    latest = None
    for fire in fire_times(trigger, now - timedelta(seconds=grace_s), now):
        latest = fire
    return latest


class ScheduleRunner:
    """A BackgroundScheduler with one job per configured schedule."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        host_fingerprint: str,
        *,
        grace_s: float = MISFIRE_GRACE_S,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.host_fingerprint = host_fingerprint
        self.grace_s = grace_s
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": int(grace_s),
                "max_instances": 1,
            },
        )

    @property
    def alive(self) -> bool:
        return bool(self._scheduler.running)

    def start(self) -> None:
        """Catch up on fires missed while down, then fire on time from now on."""
        for name, schedule in self.settings.schedules.items():
            self.catch_up(name)
            self._scheduler.add_job(
                self.fire, trigger_for(schedule), args=[name], id=name, name=name
            )
        self._scheduler.start()
        log.info("scheduler started with %d schedule(s)", len(self.settings.schedules))

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def fire(self, name: str) -> int | None:
        """APScheduler's job: enqueue the fire that is due now."""
        trigger = trigger_for(self.settings.schedules[name])
        fire_time = latest_fire(trigger, utcnow(), self.grace_s)
        if fire_time is None:
            log.warning("schedule %s: fired with no fire time in the grace period", name)
            return None
        return self.enqueue(name, fire_time)

    def catch_up(self, name: str, now: datetime | None = None) -> int | None:
        """At start-up: run the latest missed fire within the grace, log older ones skipped.

        A schedule that never fired (new in the config) starts with its next fire instead.
        """
        now = now or utcnow()
        trigger = trigger_for(self.settings.schedules[name])
        last = self._last_fire(name)
        if last is None:
            return None
        self._log_skipped(name, trigger, last, now)
        fire_time = latest_fire(trigger, now, self.grace_s)
        if fire_time is None:
            return None
        created = self.enqueue(name, fire_time)
        if created is not None:
            log.info("schedule %s: ran the fire of %s missed while down", name, fire_time)
        return created

    def _last_fire(self, name: str) -> datetime | None:
        with transaction(self.sessions) as session:
            return session.scalar(
                select(func.max(Validation.fire_time)).where(Validation.schedule == name)
            )

    def _log_skipped(self, name: str, trigger: BaseTrigger, last: datetime, now: datetime) -> None:
        cutoff = now - timedelta(seconds=self.grace_s)
        missed = [t for t in fire_times(trigger, last + timedelta(microseconds=1), cutoff)]
        if missed:
            log.warning(
                "schedule %s: %d fire(s) from %s to %s missed while down and older than the "
                "%gs grace: skipped",
                name,
                len(missed),
                missed[0].isoformat(),
                missed[-1].isoformat(),
                self.grace_s,
            )

    def enqueue(self, name: str, fire_time: datetime) -> int | None:
        """Plan the validation of one fire; None when it exists already or was skipped."""
        try:
            with transaction(self.sessions) as session:
                return self._plan_fire(session, name, fire_time)
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                log.info("schedule %s: fire %s already enqueued by another host", name, fire_time)
                return None
            raise
        except InputError as exc:
            log.error("schedule %s: fire %s not enqueued: %s", name, fire_time, exc)
            return None

    def _plan_fire(self, session: Session, name: str, fire_time: datetime) -> int | None:
        if _fire_recorded(session, name, fire_time):
            return None
        schedule = self.settings.schedules[name]
        build = self._build(session, schedule)
        if build is None:
            log.warning("schedule %s: no candidate build to validate; fire skipped", name)
            return None
        resolved, _ = resolve_build(self.settings, build)
        duplicate = find_active_duplicate(session, resolved, schedule.scenarios, schedule.tag)
        if duplicate is not None:
            log.warning(
                "schedule %s: fire %s skipped: validation %s of the same build is still "
                "queued or running",
                name,
                fire_time,
                duplicate.id,
            )
            return None
        request = ValidationRequest(
            build=build,
            scenarios=tuple(schedule.scenarios),
            source=TriggerSource.SCHEDULE,
            duration_s=schedule.duration,
            tag=schedule.tag,
            requester=f"schedule:{name}",
            schedule=name,
            fire_time=fire_time,
        )
        planned = plan(session, self.settings, request, self.host_fingerprint)
        log.info(
            "schedule %s: fire %s queued validation %s", name, fire_time, planned.validation_id
        )
        return planned.validation_id

    def _build(self, session: Session, schedule: ScheduleSettings) -> str | None:
        if schedule.build != NEWEST_CANDIDATE:
            return schedule.build
        return newest_candidate(session)


def newest_candidate(session: Session) -> str | None:
    """The most recently created build of channel candidate (over all gateways)."""
    query = (
        select(Build.name)
        .where(Build.channel == Channel.CANDIDATE)
        .order_by(Build.created_at.desc(), Build.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def _fire_recorded(session: Session, name: str, fire_time: datetime) -> bool:
    query = select(Validation.id).where(
        Validation.schedule == name, Validation.fire_time == fire_time
    )
    return session.scalar(query) is not None
