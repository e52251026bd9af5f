"""Threshold resolution, and bad thresholds rejected through observatory.settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from observatory.analysis.thresholds import DEFAULTS, exceeds, resolve
from observatory.errors import ConfigError
from observatory.settings import METRICS, MetricThreshold, ThresholdSettings, load_settings


def test_every_metric_has_a_default() -> None:
    assert set(DEFAULTS) == set(METRICS)
    for metric, threshold in DEFAULTS.items():
        assert threshold.relative is not None or threshold.absolute is not None, metric


def test_global_then_scenario_overrides_win_whole() -> None:
    settings = ThresholdSettings(metrics={"latency_p99": MetricThreshold(relative=0.2)})
    limits = resolve(settings, {"error_rate": MetricThreshold(absolute=0.01)})
    assert limits.of("latency_p99") == MetricThreshold(relative=0.2)  # the 2 ms floor is gone
    assert limits.of("error_rate") == MetricThreshold(absolute=0.01)
    assert limits.of("latency_p50") == DEFAULTS["latency_p50"]
    assert limits.fdr == settings.fdr


def test_empty_threshold_keeps_the_default() -> None:
    limits = resolve(ThresholdSettings(metrics={"cpu": MetricThreshold()}))
    assert limits.of("cpu") == DEFAULTS["cpu"]


def test_unknown_override_metric() -> None:
    with pytest.raises(ConfigError, match=r"overrides: unknown metric\(s\) latency_p42; known: "):
        resolve(ThresholdSettings(), {"latency_p42": MetricThreshold(relative=0.1)})


def test_exceeds_needs_every_part() -> None:
    both = MetricThreshold(relative=0.1, absolute=2.0)
    assert exceeds(both, 0.2, 3.0, +1)
    assert not exceeds(both, 0.2, 1.0, +1)  # +20 % of a 5 ms value: 1 ms, below the floor
    assert not exceeds(both, -0.2, -3.0, +1)
    assert exceeds(both, -0.2, -3.0, -1)  # the same change, judged as an improvement
    assert not exceeds(MetricThreshold(), 1.0, 1.0, +1)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "observatory.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_negative_threshold_in_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  metrics:\n    latency_p99:\n      relative: -0.1\n")
    with pytest.raises(ConfigError, match=r"thresholds\.metrics\.latency_p99\.relative"):
        load_settings(path, environ={})


def test_unknown_metric_in_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  metrics:\n    latency_p98:\n      relative: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown metric\(s\) latency_p98; known: latency_p50"):
        load_settings(path, environ={})


def test_the_renamed_memory_peak_key_names_its_new_name(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  metrics:\n    memory_peak:\n      relative: 0.2\n")
    with pytest.raises(ConfigError, match=r"memory_peak \(memory_peak is now memory_level\)"):
        load_settings(path, environ={})


def test_fdr_out_of_range_in_config(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  fdr: 1.5\n")
    with pytest.raises(ConfigError, match=r"thresholds\.fdr"):
        load_settings(path, environ={})


def test_config_thresholds_reach_the_analysis(tmp_path: Path) -> None:
    path = _write(tmp_path, "thresholds:\n  metrics:\n    memory_slope:\n      absolute: 25\n")
    limits = resolve(load_settings(path, environ={}).thresholds)
    assert limits.of("memory_slope").absolute == 25
