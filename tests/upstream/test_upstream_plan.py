"""The latency model and the token estimate, as pure functions."""

from __future__ import annotations

import random
import statistics

import pytest

from observatory.settings import LatencyModel, UpstreamSettings
from observatory.upstream.plan import Outcome, Planner, draw_delay
from observatory.upstream.tokens import completion_text, estimate_tokens, split_text


@pytest.mark.parametrize("distribution", ["normal", "lognormal"])
def test_draws_have_the_configured_mean_and_stddev(distribution: str) -> None:
    model = LatencyModel.model_validate(
        {"distribution": distribution, "mean": "50ms", "stddev": "10ms"}
    )
    rng = random.Random(3)
    draws = [draw_delay(model, model.mean, rng) for _ in range(20_000)]
    # Standard error of the mean is 0.01 / sqrt(20000) = 0.07 ms; 0.5 ms is ~7 of them.
    assert statistics.fmean(draws) == pytest.approx(0.05, abs=0.0005)
    assert statistics.stdev(draws) == pytest.approx(0.01, rel=0.05)


def test_fixed_is_exact_and_wide_normal_never_negative() -> None:
    fixed = LatencyModel(distribution="fixed", mean=0.2, stddev=0.5)
    assert draw_delay(fixed, 0.2, random.Random(1)) == 0.2
    wide = LatencyModel(distribution="normal", mean=0.01, stddev=0.1)
    rng = random.Random(1)
    draws = [draw_delay(wide, 0.01, rng) for _ in range(2000)]
    assert min(draws) == 0.0
    assert all(d >= 0 for d in draws)


def test_lognormal_is_right_skewed() -> None:
    model = LatencyModel(distribution="lognormal", mean=0.05, stddev=0.03)
    rng = random.Random(5)
    draws = [draw_delay(model, 0.05, rng) for _ in range(5000)]
    assert statistics.median(draws) < statistics.fmean(draws)
    assert min(draws) > 0


def test_planner_streams_use_ttft_and_chunk_delay() -> None:
    settings = UpstreamSettings.model_validate(
        {
            "seed": 1,
            "latency": {"distribution": "fixed", "mean": "40ms"},
            "stream": {"ttft": "70ms", "chunks": 4, "chunk_delay": "10ms"},
            "faults": {"added_latency": "5ms"},
        }
    )
    planner = Planner(settings)
    streamed = planner.plan(stream=True)
    assert (streamed.first, streamed.chunk_delay, streamed.added) == (0.07, 0.01, 0.005)
    assert streamed.stream_total(4) == pytest.approx(0.005 + 0.07 + 0.03)
    assert planner.plan(stream=False).first == 0.04


def test_latency_knobs_do_not_shift_the_fault_sequence() -> None:
    def outcomes(latency: dict[str, object]) -> list[Outcome]:
        settings = UpstreamSettings.model_validate(
            {"seed": 9, "latency": latency, "faults": {"error_rate": 0.5}}
        )
        planner = Planner(settings)
        return [planner.plan(stream=False).outcome for _ in range(200)]

    assert outcomes({"distribution": "fixed"}) == outcomes({"distribution": "normal"})


def test_generated_text_reestimates_to_its_token_count() -> None:
    for tokens in (1, 2, 7, 100, 1001):
        assert estimate_tokens(completion_text(tokens)) == tokens
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcde") == 2


def test_split_text_keeps_whole_tokens() -> None:
    text = completion_text(10)
    pieces = split_text(text, 4)
    assert "".join(pieces) == text
    assert [estimate_tokens(p) for p in pieces] == [2, 3, 2, 3]
    assert len(split_text(completion_text(3), 20)) == 3
