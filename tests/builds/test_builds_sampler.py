"""The resource sampler on real process trees: values, timing grid, robustness."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psutil
import pytest

from observatory.builds.sampler import ProcessTreeProbe, ResourceSampler, parse_metrics
from observatory.domain import ResourceSample

# Holds 64 MiB of its own pages, starts one child, and burns CPU for at most 60 s.
BUSY = """
import subprocess, sys, time
block = bytearray(64 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
end = time.monotonic() + 60
while time.monotonic() < end:
    sum(range(10000))
"""


@pytest.fixture
def busy_tree() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    time.sleep(1.0)  # let it allocate and fork
    yield proc.pid
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.kill()
    proc.wait()
    for child in children:
        child.kill()
    psutil.wait_procs(children, timeout=5)


def test_process_tree_probe_measures_the_whole_tree(busy_tree: int) -> None:
    probe = ProcessTreeProbe("loadgen", busy_tree)
    time.sleep(0.5)
    sample = probe.sample(datetime.now(UTC))
    assert sample.role == "loadgen"
    assert sample.processes == 2
    assert sample.rss_mb is not None
    assert sample.rss_mb > 64
    assert sample.uss_mb is not None
    assert 64 < sample.uss_mb <= sample.rss_mb
    assert sample.cpu_percent is not None
    assert sample.cpu_percent > 10  # a busy loop, even on a shared 2-core machine
    assert sample.threads is not None
    assert sample.threads >= 2


def test_a_gone_process_gives_no_invented_numbers() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    sample = ProcessTreeProbe("gateway", proc.pid).sample(datetime.now(UTC))
    assert sample.processes == 0
    assert (sample.rss_mb, sample.uss_mb, sample.cpu_percent, sample.fds) == (None,) * 4


def test_sampler_emits_on_its_interval_and_survives_a_failing_callback(busy_tree: int) -> None:
    got: list[ResourceSample] = []
    calls = 0

    def emit(sample: ResourceSample) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database briefly away")
        got.append(sample)

    sampler = ResourceSampler(emit, interval=0.25)
    with sampler:
        sampler.watch_process("loadgen", busy_tree)  # added while running
        time.sleep(1.6)
    count = len(got)
    time.sleep(0.5)
    assert len(got) == count, "stop() ends sampling"
    assert 3 <= count <= 7
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(got)]
    assert all(0.15 < gap < 0.6 for gap in gaps), gaps


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="sample interval must be positive"):
        ResourceSampler(lambda s: None, interval=0)


def test_metrics_text_is_summed_per_name_and_comments_ignored() -> None:
    text = (
        "# HELP process_open_fds Number of open file descriptors.\n"
        "process_open_fds 10\n"
        'process_resident_memory_bytes{pid="1"} 1.5e+08\n'
        'process_resident_memory_bytes{pid="2"} 5e+07\n'
        "process_cpu_seconds_total NaN-ish\n"
        "other_metric 3\n"
    )
    names = ("process_open_fds", "process_resident_memory_bytes", "process_cpu_seconds_total")
    assert parse_metrics(text, names) == {
        "process_open_fds": 10.0,
        "process_resident_memory_bytes": 2e8,
    }
