"""Load-generator memory: RSS slope of the observatory's Locust tree, plain Locust beside it.

Usage: .venv/bin/python benchmarks/load_memory.py [--seconds 120] [--minutes 30]
       [--rate 8] [--interval 5]

Both generators run at the same time against the same mock upstream (so they share the
machine's conditions): the observatory with the soak's profile (runner, plugin, mixed
scenario with streaming, open model at ``rate`` req/s with 100 in-flight slots, 10 s
windows, spool) and plain Locust FastHttpUsers posting a chat request at about the same
rate. The RSS and USS of each whole process tree (master and forked worker) are sampled
every ``interval`` seconds; after the first fifth (warm-up: imports settle, pools fill)
the slope is estimated with Theil-Sen (robust to the allocator's step changes), in MB per
hour with its 95 % confidence interval.

RSS is the target's measure. USS is shown beside it because it behaves differently in a
forked worker: pages it shares copy-on-write with the master count in its RSS from the
start but in its USS only once either process writes to them, so USS climbs for a while
without any new allocation (docs/benchmarks.md).

Target: the observatory's RSS slope under 1 MB/hour over a 30-minute run
(``--minutes 30``); the default short run shows the method and catches gross leaks only.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from scipy import stats

from observatory.load.runner import start_load
from observatory.settings import ScenarioSettings, Settings, UpstreamSettings
from observatory.upstream.server import UpstreamServer

PLAIN = textwrap.dedent(
    """
    import random
    from locust import FastHttpUser, between, task

    WORDS = "latency gateway token stream window budget release upstream".split()
    SEEDED = random.Random(64)
    PROMPTS = [f"[{i}] " + " ".join(SEEDED.choices(WORDS, k=64)) for i in range(16)]

    class PlainChat(FastHttpUser):
        wait_time = between(0.9, 1.1)

        @task
        def chat(self):
            self.client.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini",
                      "messages": [{"role": "user", "content": random.choice(PROMPTS)}],
                      "max_tokens": 32},
                name="chat",
            )
    """
)


@dataclass
class Series:
    name: str
    pid: int
    times: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    uss_mb: list[float] = field(default_factory=list)

    def sample(self, now: float) -> None:
        try:
            root = psutil.Process(self.pid)
            memory = [p.memory_full_info() for p in [root, *root.children(recursive=True)]]
        except psutil.Error:
            return
        self.times.append(now)
        self.rss_mb.append(sum(m.rss for m in memory) / 2**20)
        self.uss_mb.append(sum(m.uss for m in memory) / 2**20)

    def slope(self, values: list[float]) -> tuple[float, float, float]:
        """Theil-Sen slope after the first fifth, MB/hour: (slope, low, high)."""
        skip = len(self.times) // 5
        hours = [(t - self.times[0]) / 3600 for t in self.times[skip:]]
        fit = stats.theilslopes(values[skip:], hours, alpha=0.95)
        return float(fit.slope), float(fit.low_slope), float(fit.high_slope)


def start_plain(url: str, users: int, seconds: float, work: Path) -> subprocess.Popen[bytes]:
    locustfile = work / "plain_memory.py"
    locustfile.write_text(PLAIN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
        "--processes", "1", "-u", str(users), "-r", str(users), "-H", url,
        "-t", f"{int(seconds) + 10}s", "--master-bind-port", port, "--master-port", port,
        "--loglevel", "WARNING",
    ]  # fmt: skip
    log = (work / "plain.log").open("wb")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--minutes", type=float, default=None, help="overrides --seconds")
    parser.add_argument("--rate", type=float, default=8.0, help="requests per second")
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    seconds = args.minutes * 60 if args.minutes else args.seconds
    scenario = ScenarioSettings.model_validate(
        {
            "file": "mixed.py",
            "profile": {"model": "open", "rate": args.rate, "max_in_flight": 100},
            "duration": seconds + 10,
            "warmup": 1,
            "window": 10,
        }
    )
    upstream = UpstreamSettings(
        seed=9,
        latency={"distribution": "lognormal", "mean": "40ms", "stddev": "10ms"},
        stream={"ttft": "80ms", "chunks": 16, "chunk_delay": "15ms"},
    )
    with tempfile.TemporaryDirectory() as tmp, UpstreamServer(upstream) as up:
        work = Path(tmp)
        plain = start_plain(up.url, max(1, round(args.rate)), seconds, work)
        load = start_load(scenario, "memory", up.url, "sk-bench", work / "run", Settings())
        series = [Series("observatory", load.pid), Series("plain Locust", plain.pid)]
        try:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                now = time.monotonic()
                for s in series:
                    s.sample(now)
                time.sleep(args.interval)
        finally:
            load.stop(grace=30)
            plain.terminate()
            plain.wait(30)
    report(series, seconds)


def report(series: list[Series], seconds: float) -> None:
    print(f"{seconds / 60:.1f} minutes, {len(series[0].times)} samples each")
    for s in series:
        for label, values in (("RSS", s.rss_mb), ("USS", s.uss_mb)):
            slope, low, high = s.slope(values)
            print(
                f"{s.name:12s} {label} {values[0]:6.1f} -> {values[-1]:6.1f} MB   "
                f"slope {slope:+7.2f} MB/h  (95 % CI {low:+.2f} .. {high:+.2f})"
            )
    slope = series[0].slope(series[0].rss_mb)[0]
    print(f"observatory slope {slope:+.2f} MB/h  (target < 1 MB/h over 30 minutes)")


if __name__ == "__main__":
    main()
