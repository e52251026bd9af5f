"""Bad phase definitions fail when the configuration loads, naming the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from observatory.errors import ConfigError
from observatory.settings import PROJECT_ROOT, Settings, load_settings

CONFIG = """
scenarios_dir: {scenarios}
scenarios:
  faulty:
    file: redis_slow.py
    profile: {{users: 2}}
    duration: 2m
    warmup: 20s
    phases: {phases}
"""


def load(tmp_path: Path, phases: str) -> Settings:
    path = tmp_path / "observatory.yaml"
    path.write_text(CONFIG.format(scenarios=PROJECT_ROOT / "scenarios", phases=phases))
    return load_settings(path, environ={})


@pytest.mark.parametrize(
    ("phases", "message"),
    [
        (
            "[{at: 30s, fault: redis_sluggish, duration: 10s}]",
            r"scenarios\.faulty\.phases\.0\.fault: Input should be 'redis_slow', 'redis_down'",
        ),
        (
            "[{at: 100s, fault: redis_down, duration: 30s}]",
            r"scenarios\.faulty: phases\[0\] \(redis_down at 1m40s\) ends at 2m10s, after the "
            r"run's duration \(2m\)",
        ),
        (
            "[{at: 30s, fault: redis_down, duration: -10}]",
            r"scenarios\.faulty\.phases\.0\.duration: bad duration -10; must not be negative",
        ),
        (
            "[{at: 30s, fault: redis_down, duration: 0s}]",
            r"scenarios\.faulty\.phases\.0\.duration: a phase needs a positive duration",
        ),
        (
            "[{at: 30s, fault: redis_slow, duration: 10s, params: {delay_ms: 2000}}]",
            r"scenarios\.faulty\.phases\.0\.params: redis_slow params: unknown param 'delay_ms'; "
            r"accepted: delay and the thresholds max_p99_ratio, max_error_rate, max_recovery",
        ),
        (
            "[{at: 30s, fault: redis_down, duration: 10s, params: {mode: drop}}]",
            r"phases\.0\.params: redis_down params: mode: Input should be 'refuse' or 'blackhole'",
        ),
        (
            "[{at: 30s, fault: provider_errors, duration: 10s, params: {error_codes: [502]}}]",
            r"phases\.0\.params: provider_errors params: error_codes\.0: Input should be 429, 500 "
            r"or 503",
        ),
        (
            "[{at: 30s, fault: control_plane, duration: 10s, params: {endpoints: {health: 1}}}]",
            r"control_plane params: endpoints: endpoint paths must start with '/'",
        ),
        (
            "[{at: 30s, fault: redis_slow, duration: 10s, params: {max_p99_ratio: -2}}]",
            r"redis_slow params: max_p99_ratio: Input should be greater than 0",
        ),
        (
            "[{at: 10s, fault: redis_slow, duration: 10s}]",
            r"phases\[0\] \(redis_slow at 10s\) starts during the warm-up \(20s\)",
        ),
        (
            "[{at: 60s, fault: provider_slow, duration: 10s}, "
            "{at: 30s, fault: redis_slow, duration: 40s}]",
            r"phases\[0\] \(provider_slow at 1m\) starts before phases\[1\] \(redis_slow\) ends "
            r"at 1m10s; phases must not overlap",
        ),
    ],
)
def test_bad_phase_is_refused_naming_the_field(tmp_path: Path, phases: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, phases)


def test_good_phases_are_stored_with_their_defaults(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "[{at: 30s, fault: redis_slow, duration: 10s, params: {max_p99_ratio: 2}},"
        " {at: 50s, fault: redis_down, duration: 10s, params: {mode: blackhole}},"
        " {at: 70s, fault: provider_errors, duration: 10s},"
        " {at: 90s, fault: control_plane, duration: 10s, params: {max_health_p99: 500ms}}]",
    )
    slow, down, errors, control = (p.params for p in settings.scenarios["faulty"].phases)
    assert slow == {"delay": 2.0, "max_p99_ratio": 2.0}
    assert down == {"mode": "blackhole"}
    assert errors == {"error_rate": 0.5, "error_codes": [500, 503]}
    assert control["max_health_p99"] == 0.5
    assert control["endpoints"]["/health"] == 1.0
