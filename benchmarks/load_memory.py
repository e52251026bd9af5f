"""Load-generator memory: RSS slope of the observatory's Locust tree, plain Locust beside it.

Usage: .venv/bin/python benchmarks/load_memory.py [--seconds 120] [--minutes 30]
       [--users 4] [--interval 5]

Both generators run at the same time against the same mock upstream (so they share the
machine's conditions): the observatory (runner, plugin, chat scenario, 10 s windows,
spool) and a plain Locust FastHttpUser posting the same request. The RSS of each whole
process tree (master and worker) is sampled every ``interval`` seconds; after the first
fifth (warm-up: imports settle, pools fill) the slope is estimated with Theil-Sen (robust
to the allocator's step changes), in MB per hour with its 95 % confidence interval.

Target: the observatory's slope under 1 MB/hour over a 30-minute run (``--minutes 30``);
the default short run shows the method and catches gross leaks only.
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
        wait_time = between(0.005, 0.015)

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

    def sample(self, now: float) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in procs if p.is_running())
        except psutil.NoSuchProcess:
            return
        self.times.append(now)
        self.rss_mb.append(rss / 2**20)

    def slope(self) -> tuple[float, float, float]:
        """Theil-Sen slope after the first fifth, MB/hour: (slope, low, high)."""
        skip = len(self.times) // 5
        hours = [(t - self.times[0]) / 3600 for t in self.times[skip:]]
        fit = stats.theilslopes(self.rss_mb[skip:], hours, alpha=0.95)
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
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    seconds = args.minutes * 60 if args.minutes else args.seconds
    scenario = ScenarioSettings.model_validate(
        {
            "file": "chat.py",
            "profile": {
                "model": "closed",
                "users": args.users,
                "spawn_rate": args.users,
                "wait_min": 0.005,
                "wait_max": 0.015,
            },
            "duration": seconds + 10,
            "warmup": 1,
            "window": 10,
        }
    )
    upstream = UpstreamSettings(seed=9, latency={"distribution": "fixed", "mean": "5ms"})
    with tempfile.TemporaryDirectory() as tmp, UpstreamServer(upstream) as up:
        work = Path(tmp)
        plain = start_plain(up.url, args.users, seconds, work)
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
        slope, low, high = s.slope()
        print(
            f"{s.name:12s} RSS {s.rss_mb[0]:6.1f} -> {s.rss_mb[-1]:6.1f} MB   "
            f"slope {slope:+7.2f} MB/h  (95 % CI {low:+.2f} .. {high:+.2f})"
        )
    slope = series[0].slope()[0]
    print(f"observatory slope {slope:+.2f} MB/h  (target < 1 MB/h over 30 minutes)")


if __name__ == "__main__":
    main()
