"""Fidelity: the observatory's percentiles against the exact ones, Locust's own beside them.

Usage: .venv/bin/python benchmarks/load_fidelity.py [--seconds 20] [--users 32]
       [--processes 2] [--mean 120ms] [--stddev 60ms]

One run, two records of the same requests: a chat scenario (the observatory's helpers,
started by its runner, ``--processes N``) whose locustfile also keeps every raw
per-request timing (Locust's response_time, the very number the plugin records), and the
observatory's windows (HDR per process, merged on the master, spooled). The truth is the
exact nearest-rank percentile of the raw timings; the observatory's value is read from its
spooled histograms merged over the run, and per window. Locust's own estimate (from its
stats, which round to 10 ms between 100 ms and 1 s) is shown beside it. The mock upstream
draws lognormal latencies so the percentiles land where Locust rounds.

Target: observatory p50 and p99 within max(0.5 ms, 0.5 %) of the truth.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import textwrap
from collections import defaultdict
from pathlib import Path

from observatory.domain import Window
from observatory.durations import parse_duration
from observatory.load.histogram import Histogram
from observatory.load.runner import start_load
from observatory.load.spool import read_spool
from observatory.settings import ScenarioSettings, Settings, UpstreamSettings
from observatory.upstream.server import UpstreamServer

RAW_DIR_ENV = "OBSERVATORY_BENCH_RAW_DIR"
SCENARIO = textwrap.dedent(
    """
    import json, os, time
    from locust import events, task
    from locust.runners import MasterRunner
    from observatory.load.helpers import ObservatoryUser, chat, prompt

    OUT = os.environ["RAW_DIR_ENV"]
    RAW = []

    @events.request.add_listener
    def keep(name, response_time, exception=None, **kwargs):
        if exception is None:
            RAW.append((time.time(), response_time))

    @events.test_stop.add_listener
    def dump(environment, **kwargs):
        if RAW:
            with open(os.path.join(OUT, f"raw-{os.getpid()}.json"), "a") as f:
                f.write(json.dumps(RAW) + "\\n")
            RAW.clear()

    @events.quitting.add_listener
    def locust_view(environment, **kwargs):
        if isinstance(environment.runner, MasterRunner):
            total = environment.runner.stats.total
            view = {str(p): total.get_response_time_percentile(p) for p in (0.5, 0.99)}
            with open(os.path.join(OUT, "locust.json"), "w") as f:
                json.dump(view, f)

    class FidelityUser(ObservatoryUser):
        @task
        def ask(self):
            chat(self, model="gpt-4o-mini",
                 messages=[{"role": "user", "content": prompt(32)}], max_tokens=16)
    """
).replace("RAW_DIR_ENV", RAW_DIR_ENV)


def nearest_rank(ordered: list[float], percentile: float) -> float:
    rank = math.ceil(round(percentile / 100.0 * len(ordered), 9))
    return ordered[max(rank, 1) - 1]


def tolerance(truth: float) -> float:
    return max(0.5, truth * 0.005)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--mean", default="120ms")
    parser.add_argument("--stddev", default="60ms")
    args = parser.parse_args(argv)
    upstream = UpstreamSettings(
        seed=11,
        latency={"distribution": "lognormal", "mean": args.mean, "stddev": args.stddev},
    )
    with tempfile.TemporaryDirectory() as tmp, UpstreamServer(upstream) as up:
        work = Path(tmp)
        (work / "scenarios").mkdir()
        (work / "scenarios" / "fidelity.py").write_text(SCENARIO)
        os.environ[RAW_DIR_ENV] = str(work)
        scenario = ScenarioSettings.model_validate(
            {
                "file": "fidelity.py",
                "profile": {"model": "closed", "users": args.users, "spawn_rate": 100},
                "duration": args.seconds,
                "warmup": 1,
                "window": 5,
                "processes": args.processes,
            }
        )
        settings = Settings(scenarios_dir=work / "scenarios")
        load = start_load(scenario, "fidelity", up.url, "sk-bench", work / "run", settings)
        if load.wait(args.seconds + 120) is None:
            load.kill()
            raise SystemExit("the run did not stop")
        raw = read_raw(work)
        locust = {float(k): v for k, v in json.loads((work / "locust.json").read_text()).items()}
        windows = [
            r
            for r in read_spool(load.spool_path)
            if isinstance(r, Window) and r.series == "latency"
        ]
    report(raw, windows, locust, parse_duration(args.mean) * 1000)


def read_raw(work: Path) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for path in work.glob("raw-*.json"):
        for line in path.read_text().splitlines():
            out.extend((float(t), float(v)) for t, v in json.loads(line))
    return out


def report(
    raw: list[tuple[float, float]],
    windows: list[Window],
    locust: dict[float, float],
    mean_ms: float,
) -> None:
    merged = Histogram()
    for window in windows:
        merged.merge(Histogram.decode(window.histogram))
    values = sorted(v for _, v in raw)
    print(f"requests: raw {len(values)}, observatory {merged.count} (mock mean {mean_ms:g} ms)")
    print(f"{'':6s}{'truth':>10s}{'observatory':>13s}{'error':>9s}{'locust':>9s}{'error':>9s}")
    worst = 0.0
    for p in (50.0, 99.0):
        truth = nearest_rank(values, p)
        ours = merged.percentile_ms(p)
        theirs = float(locust[p / 100])
        worst = max(worst, abs(ours - truth) / tolerance(truth))
        print(
            f"p{p:<5g}{truth:10.3f}{ours:13.3f}{ours - truth:+9.3f}"
            f"{theirs:9.1f}{theirs - truth:+9.3f}"
        )
    worst = max(worst, per_window(raw, windows))
    verdict = "PASS" if worst <= 1.0 else "FAIL"
    print(f"worst error / allowed (max(0.5 ms, 0.5 %)): {worst:.3f}  {verdict}")


def per_window(raw: list[tuple[float, float]], windows: list[Window]) -> float:
    """Worst error/allowance of p50 and p99 over windows (raw grouped by completion time)."""
    by_start: dict[float, list[float]] = defaultdict(list)
    starts = sorted({w.start.timestamp() for w in windows})
    length = windows[0].length_s if windows else 1.0
    for at, value in raw:
        start = max((s for s in starts if s <= at), default=starts[0])
        if at >= starts[-1] + length:
            start = starts[-1]  # completions while draining belong to the last window
        by_start[start].append(value)
    worst = 0.0
    counts = []
    for window in windows:
        values = sorted(by_start[window.start.timestamp()])
        histogram = Histogram.decode(window.histogram)
        counts.append((len(values), histogram.count))
        if len(values) < 100:
            continue
        for p in (50.0, 99.0):
            truth = nearest_rank(values, p)
            worst = max(worst, abs(histogram.percentile_ms(p) - truth) / tolerance(truth))
    print(f"per window (raw, observatory) counts: {counts}")
    print(f"per window worst error / allowed: {worst:.3f}")
    return worst


if __name__ == "__main__":
    main()
