"""The lifecycle plan: who joins when, who goes quiet, the fleet, how clients walk away."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from observatory.errors import InputError
from observatory.load.lifecycle import FLEET_NAME, Walker, fleet_names, plan_from


def test_defaults_stagger_a_model_and_send_it_quiet_longer_than_ten_minutes() -> None:
    plan = plan_from({})
    assert plan.fleet >= 250  # past the 200 entries of common client caches
    assert set(plan.model_weights(10.0)) == {"gpt-4o-mini"}  # gpt-4o joins at 30 s
    assert set(plan.model_weights(31.0)) == {"gpt-4o-mini", "gpt-4o"}
    quiet = [t for t in range(0, 1900, 10) if t >= 30 and not plan.active("gpt-4o", float(t))]
    assert quiet == list(range(quiet[0], quiet[0] + 660, 10))  # one gap of 11 minutes
    assert plan.active("gpt-4o", float(quiet[-1] + 10))  # then it comes back
    assert set(plan.model_weights(float(quiet[0]))) == {"gpt-4o-mini"}


def test_the_fleet_is_visited_in_turn_so_a_cache_of_200_evicts() -> None:
    plan = plan_from({"fleet": 250, "fleet_share": 1.0, "stream_share": 0.0})
    walker = Walker(plan, random.Random(1))
    models = [walker.next(0.0).model for _ in range(500)]
    assert set(models) == set(fleet_names(250))
    assert models[:250] == models[250:]  # a cycle longer than the cache: every entry evicts
    assert {walker.next(0.0).name for _ in range(5)} == {FLEET_NAME}


def test_shares_of_abandoned_cancelled_and_long_requests() -> None:
    plan = plan_from(
        {"stream_share": 1.0, "abandon_share": 0.3, "cancel_share": 0.1, "long_share": 0.1}
    )
    walker = Walker(plan, random.Random(2))
    counts: Counter[str] = Counter()
    for _ in range(4000):
        action = walker.next(100.0)
        kind = (
            "abandon"
            if action.abandon_after
            else "cancel"
            if action.cancel_after
            else "long"
            if action.max_tokens
            else "whole"
        )
        counts[kind] += 1
    assert 0.27 < counts["abandon"] / 4000 < 0.33
    assert 0.08 < counts["cancel"] / 4000 < 0.12
    assert 0.08 < counts["long"] / 4000 < 0.12


def test_without_streams_nothing_is_abandoned() -> None:
    walker = Walker(plan_from({"stream_share": 0.0, "abandon_share": 1.0}), random.Random(3))
    assert not any(walker.next(0.0).abandon_after for _ in range(200))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"start_after": {"gpt-5": "1m"}}, "unknown model(s) ['gpt-5']"),
        ({"idle": {"gpt-4o": {"every": "1m", "for": "2m"}}}, "'for' must be > 0 and < 'every'"),
        ({"idle": {"gpt-4o": "10m"}}, "'idle.gpt-4o': expected a mapping"),
        ({"start_after": {"gpt-4o": "soon"}}, "'start_after.gpt-4o': bad duration 'soon'"),
        ({"fleet": 5000}, "'fleet': expected an int 0..999"),
        ({"abandon_share": 1.5}, "'abandon_share': expected a share 0..1"),
        ({"models": {"a": 0}}, "'models': weights must be >= 0, not all 0"),
    ],
)
def test_bad_params_are_named(values: dict[str, object], message: str) -> None:
    with pytest.raises(InputError, match=None) as caught:
        plan_from(values)
    assert message in str(caught.value)
