"""Planning validations: baselines first, reuse of stable runs, refusals of bad builds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from observatory.builds.spec import REFUSED_RELEASES
from observatory.domain import RunStatus, TriggerSource
from observatory.errors import InputError
from observatory.settings import Settings, load_settings
from observatory.store.db import transaction
from observatory.store.tables import Build, Run, utcnow
from observatory.validation import ValidationRequest, find_active_duplicate, plan, resolve_build

CONFIG = """
scenarios_dir: {scenarios}
builds:
  old: {{gateway: litellm, pip: "litellm[proxy]==1.81.9", channel: stable}}
  new: {{gateway: litellm, pip: "litellm[proxy]==1.81.12"}}
  dev: {{gateway: litellm, command: "gw --port {{port}}", version: dev}}
scenarios:
  chat: {{file: chat.py, profile: {{users: 2}}, duration: 10m, warmup: 1m}}
  mixed: {{file: chat.py, profile: {{model: open, rate: 5}}, duration: 10m}}
"""

REFUSED = min(REFUSED_RELEASES["litellm"])  # a compromised release, from the refusal list


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "chat.py").write_text("# scenario\n")
    path = tmp_path / "observatory.yaml"
    path.write_text(CONFIG.format(scenarios=scenarios))
    return load_settings(path, environ={})


def request(build: str, *scenarios: str, **extra: object) -> ValidationRequest:
    return ValidationRequest(
        build=build, scenarios=scenarios or ("chat",), source=TriggerSource.CLI, **extra
    )  # type: ignore[arg-type]


def test_candidate_without_history_queues_the_stable_build_first(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(sessions) as session:
        planned = plan(session, settings, request("new", "chat", "mixed"), "host-a")
    assert len(planned.run_ids) == 4
    with transaction(sessions) as session:
        rows = [session.get(Run, i) for i in planned.run_ids]
        names = [session.get(Build, r.build_id).name for r in rows if r]
    assert names == ["old", "new", "old", "new"]
    base, cand = rows[0], rows[1]
    assert base
    assert cand
    assert (base.role, cand.role) == ("baseline", "candidate")
    assert cand.baseline_run_id == base.id
    assert base.id < cand.id  # claimed in id order: the baseline runs first
    assert planned.candidate_run_ids == (rows[1].id, rows[3].id)  # type: ignore[union-attr]
    assert "queued old as the baseline" in planned.notes[0]


def test_a_recent_stable_run_measured_alike_is_reused(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(sessions) as session:
        first = plan(session, settings, request("new"), "host-a")
        base = session.get(Run, first.run_ids[0])
        assert base is not None
        base.status, base.ended_at = RunStatus.DONE, utcnow() - timedelta(hours=1)
    with transaction(sessions) as session:
        again = plan(session, settings, request("new"), "host-a")
        other_host = plan(session, settings, request("new"), "host-b")
        shorter = plan(session, settings, request("new", duration_s=60.0), "host-a")
    assert len(again.run_ids) == 1
    with transaction(sessions) as session:
        cand = session.get(Run, again.run_ids[0])
        assert cand is not None
        assert cand.baseline_run_id == first.run_ids[0]
    assert "reusing run" in again.notes[0]
    assert len(other_host.run_ids) == 2  # another host's numbers are not comparable
    assert len(shorter.run_ids) == 2  # nor a run of another length


def test_excluded_and_old_runs_are_never_chosen(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(sessions) as session:
        first = plan(session, settings, request("new"), "host-a")
        base = session.get(Run, first.run_ids[0])
        assert base is not None
        base.status, base.ended_at, base.excluded = RunStatus.DONE, utcnow(), True
    with transaction(sessions) as session:
        assert len(plan(session, settings, request("new"), "host-a").run_ids) == 2
        base = session.get(Run, first.run_ids[0])
        assert base is not None
        base.excluded, base.ended_at = False, utcnow() - timedelta(days=31)
    with transaction(sessions) as session:
        assert len(plan(session, settings, request("new"), "host-a").run_ids) == 2


def test_baseline_none_and_explicit(sessions: sessionmaker[Session], settings: Settings) -> None:
    with transaction(sessions) as session:
        alone = plan(session, settings, request("new", baseline="none"), "h")
        named = plan(session, settings, request("dev", baseline=str(alone.run_ids[0])), "h")
    assert len(alone.run_ids) == 1
    with transaction(sessions) as session:
        run = session.get(Run, named.run_ids[0])
        assert run is not None
        assert run.baseline_run_id == alone.run_ids[0]


def test_alongside_queues_the_stable_build_to_measure_at_the_same_time(
    sessions: sessionmaker[Session], settings: Settings
) -> None:
    with transaction(sessions) as session:
        first = plan(session, settings, request("new"), "host-a")
        done = session.get(Run, first.run_ids[0])
        assert done is not None
        done.status, done.ended_at = RunStatus.DONE, utcnow()  # reusable, but not wanted
    with transaction(sessions) as session:
        planned = plan(session, settings, request("new", baseline="alongside"), "host-a")
        base, cand = (session.get(Run, i) for i in planned.run_ids)
        assert base is not None
        assert cand is not None
        assert (base.role, base.baseline_request) == ("baseline", "none")
        assert (cand.baseline_run_id, cand.baseline_request) == (base.id, "alongside")
    assert "queued old as the baseline, side by side with the candidate" in planned.notes[0]
    policy = settings.model_copy(
        update={"baseline": settings.baseline.model_copy(update={"policy": "alongside"})}
    )
    with transaction(sessions) as session:
        by_policy = plan(session, policy, request("new"), "host-a")
        assert len(by_policy.run_ids) == 2
        cand = session.get(Run, by_policy.run_ids[1])
        assert cand is not None
        assert cand.baseline_request == "alongside"


def test_pip_specs_resolve_to_configured_builds_or_new_ones(settings: Settings) -> None:
    assert resolve_build(settings, "litellm==1.81.9")[0] == "old"
    name, build = resolve_build(settings, "litellm==1.80.0")
    assert name == "litellm[proxy]==1.80.0"
    assert build.pip == "litellm[proxy]==1.80.0"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        ("ghost", "unknown build 'ghost'; give a configured build (dev, new, old)"),
        ("litellm>=1.0", "unknown build"),
        (f"litellm=={REFUSED}", "compromised release"),
        (
            "requests==2.0.0",
            "package 'requests' is not an allowed gateway package; accepted: litellm",
        ),
        ("litellm==1.*", "a build needs one exact version"),
    ],
)
def test_bad_builds_are_refused_and_nothing_is_written(
    sessions: sessionmaker[Session], settings: Settings, build: str, message: str
) -> None:
    with pytest.raises(InputError) as info, transaction(sessions) as session:
        plan(session, settings, request(build), "h")
    assert message in str(info.value)
    with transaction(sessions) as session:
        assert session.query(Run).count() == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"baseline": "yesterday"},
            "baseline: 'yesterday'; accepted: auto, none, alongside, or a run id",
        ),
        ({"duration_s": 0.5}, "duration: 0.5s is outside 1s..7d"),
    ],
)
def test_bad_request_fields(
    sessions: sessionmaker[Session], settings: Settings, extra: dict[str, object], message: str
) -> None:
    with pytest.raises(InputError) as info, transaction(sessions) as session:
        plan(session, settings, request("new", **extra), "h")
    assert message in str(info.value)


def test_unknown_scenario(sessions: sessionmaker[Session], settings: Settings) -> None:
    with (
        pytest.raises(InputError, match="unknown scenario 'soak'; known: chat, mixed"),
        transaction(sessions) as session,
    ):
        plan(session, settings, request("new", "soak"), "h")


def test_active_duplicates_are_found(sessions: sessionmaker[Session], settings: Settings) -> None:
    with transaction(sessions) as session:
        plan(session, settings, request("new", "chat", "mixed", tag="v1"), "h")
    with transaction(sessions) as session:
        assert find_active_duplicate(session, "new", ["mixed", "chat"], "v1") is not None
        assert find_active_duplicate(session, "new", ["chat"], "v1") is None
        assert find_active_duplicate(session, "new", ["chat", "mixed"], "v2") is None
