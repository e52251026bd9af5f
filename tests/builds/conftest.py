"""Fixtures for build tests: settings for a command build of tests/builds/fake_gateway.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from builds_helpers import MASTER_KEY

from observatory.settings import Settings


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings with one gateway 'fake' (kind openai) and one build 'b' from keyword args."""

    def make(gateway: dict[str, Any] | None = None, **build: Any) -> Settings:
        gw = {"kind": "openai", "master_key": MASTER_KEY, "readiness_timeout": "20s"}
        return Settings.model_validate(
            {
                "cache_dir": str(tmp_path / "cache"),
                "data_dir": str(tmp_path / "data"),
                "gateways": {"fake": {**gw, **(gateway or {})}},
                "builds": {"b": {"gateway": "fake", **build}},
            }
        )

    return make
