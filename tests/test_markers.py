"""Every process a run starts carries the run's marker (recovery finds orphans by it)."""

from __future__ import annotations

import threading
from pathlib import Path

import psutil

from observatory.markers import OWNER_ENV, RUN_ID_ENV, marked, marking
from observatory.settings import UpstreamSettings
from observatory.upstream.server import UpstreamServer


def test_marker_is_set_only_inside_the_block_and_only_in_its_thread() -> None:
    seen: dict[str, str] = {}
    with marking(7, "owner-x"):
        assert marked({})[RUN_ID_ENV] == "7"
        thread = threading.Thread(target=lambda: seen.update(marked({})))
        thread.start()
        thread.join()
    assert seen == {}  # another thread (another run slot) is not marked
    assert marked({RUN_ID_ENV: "3", OWNER_ENV: "stale"}) == {}  # inherited markers never leak


def test_a_spawned_upstream_carries_the_marker(tmp_path: Path) -> None:
    with marking(42, "vm/1/2/slot0/abc"), UpstreamServer(UpstreamSettings()) as upstream:
        env = psutil.Process(upstream.pid).environ()
    assert env[RUN_ID_ENV] == "42"
    assert env[OWNER_ENV] == "vm/1/2/slot0/abc"
