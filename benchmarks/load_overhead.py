"""Load-generator CPU per request: plain Locust FastHttpUser vs the observatory plugin.

Usage: .venv/bin/python benchmarks/load_overhead.py [--seconds 10] [--users 8] [--rounds 3]
       [--scenario chat.py]

Both sides send the same chat completion (same prompt variants, same headers) to the same
mock upstream, in turn (plain, observatory, plain, ...) so they share the machine's
conditions. The reference is a locustfile with a FastHttpUser that posts the request with
``self.client.post`` and nothing else; the observatory side is ``scenarios/<scenario>``
started by the observatory runner (plugin, helpers, window merging, spool, status).

CPU is the user + system time of the whole Locust process tree (master and worker,
psutil), read at two moments after the users have started; requests are what the mock
upstream served between the same two moments (its /admin/stats). Start-up and shutdown
are outside the measured interval. Reported: CPU microseconds per request for each run,
the median of each side and the ratio observatory / plain (target <= 1.11, aim 1.05).
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from observatory.load.runner import start_load
from observatory.settings import ScenarioSettings, Settings, UpstreamSettings
from observatory.upstream.server import UpstreamServer

API_KEY = "sk-bench-overhead"
WARMUP_S = 3.0

PLAIN = textwrap.dedent(
    """
    import random
    from locust import FastHttpUser, constant, task

    WORDS = "latency gateway token stream window budget release upstream".split()
    SEEDED = random.Random(64)
    PROMPTS = [f"[{i}] " + " ".join(SEEDED.choices(WORDS, k=64)) for i in range(16)]

    class PlainChat(FastHttpUser):
        wait_time = constant(0)

        def on_start(self):
            self.rng = random.Random()

        @task
        def chat(self):
            self.client.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini",
                      "messages": [{"role": "user", "content": self.rng.choice(PROMPTS)}],
                      "max_tokens": 32},
                headers={"Authorization": "Bearer API_KEY", "Content-Type": "application/json"},
                name="chat",
            )
    """
).replace("API_KEY", API_KEY)


@dataclass(frozen=True)
class Sample:
    side: str
    requests: int
    cpu_s: float

    @property
    def us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its live descendants."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def served(url: str) -> int:
    return int(httpx.get(f"{url}/admin/stats", timeout=10).json()["requests_total"])


def measure(side: str, pid: int, url: str, seconds: float) -> Sample:
    time.sleep(WARMUP_S)
    cpu0, req0 = tree_cpu(pid), served(url)
    time.sleep(seconds)
    cpu1, req1 = tree_cpu(pid), served(url)
    return Sample(side, req1 - req0, cpu1 - cpu0)


def run_plain(url: str, users: int, seconds: float, workdir: Path) -> Sample:
    locustfile = workdir / "plain_chat.py"
    locustfile.write_text(PLAIN)
    port = free_port()
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
        "--processes", "1", "-u", str(users), "-r", str(users * 10), "-H", url,
        "-t", f"{int(WARMUP_S + seconds + 5)}s",
        "--master-bind-port", str(port), "--master-port", str(port),
        "--loglevel", "WARNING",
    ]  # fmt: skip
    with (workdir / "plain.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.5)  # imports and worker fork, like the observatory's start-up
            return measure("plain", process.pid, url, seconds)
        finally:
            process.terminate()
            process.wait(30)


def run_observatory(
    url: str, users: int, seconds: float, workdir: Path, scenario_file: str
) -> Sample:
    scenario = ScenarioSettings.model_validate(
        {
            "file": scenario_file,
            "profile": {"model": "closed", "users": users, "spawn_rate": users * 10},
            "duration": WARMUP_S + seconds + 5,
            "warmup": 1,
            "window": 2,
        }
    )
    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    load = start_load(scenario, "bench", url, API_KEY, run_dir, Settings(), stop_timeout=5)
    try:
        return measure("observatory", load.pid, url, seconds)
    finally:
        load.stop(grace=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenario", default="chat.py")
    args = parser.parse_args(argv)
    upstream = UpstreamSettings(seed=3, latency={"distribution": "fixed", "mean": "5ms"})
    samples: list[Sample] = []
    with UpstreamServer(upstream) as up, tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for side in ("plain", "observatory") if round_ % 2 == 0 else ("observatory", "plain"):
                if side == "plain":
                    sample = run_plain(up.url, args.users, args.seconds, Path(tmp))
                else:
                    sample = run_observatory(
                        up.url, args.users, args.seconds, Path(tmp), args.scenario
                    )
                samples.append(sample)
                print(
                    f"round {round_ + 1} {side:12s} {sample.requests:7d} requests "
                    f"{sample.cpu_s:7.2f} s CPU  {sample.us_per_request:7.1f} us/request",
                    flush=True,
                )
    report(samples)


def report(samples: list[Sample]) -> None:
    plain = statistics.median(s.us_per_request for s in samples if s.side == "plain")
    obs = statistics.median(s.us_per_request for s in samples if s.side == "observatory")
    # Each round ran both sides back to back: their ratio cancels slow drifts of the
    # shared machine's load better than the ratio of the two medians does.
    rounds = [samples[i : i + 2] for i in range(0, len(samples), 2)]
    paired = [
        next(s for s in pair if s.side == "observatory").us_per_request
        / next(s for s in pair if s.side == "plain").us_per_request
        for pair in rounds
    ]
    print(f"median plain Locust      {plain:7.1f} us CPU/request")
    print(f"median observatory       {obs:7.1f} us CPU/request")
    print(f"ratio of medians         {obs / plain:7.3f}")
    print(f"per-round ratios         {' '.join(f'{r:.3f}' for r in paired)}")
    print(f"median per-round ratio   {statistics.median(paired):7.3f}   (target <= 1.11, aim 1.05)")


if __name__ == "__main__":
    main()
