"""Stall: SIGSTOP the upstream for 5 s in an open-model run; the p99 must show it in full.

Usage: .venv/bin/python benchmarks/load_stall.py [--seconds 30] [--stall 5] [--at 10]
       [--rate 50] [--max-in-flight 100]

An open-model run (constant arrivals at ``rate``/s, ``max-in-flight`` slots) sends chat
completions to the mock upstream (10 ms service time); ``at`` seconds after the users
start, the upstream process is stopped with SIGSTOP for ``stall`` seconds, then resumed.

With latency measured from the intended send time, a request intended ``x`` seconds into
a stall of length S waits S - x, plus its service time s; the stalled requests' latencies
spread evenly over [s, S + s], r per second of stall. Over the whole run (N requests), the
p99 is the latency exceeded by N/100 of them, all stalled ones: p99 = S + s - N / (100 r).
Because only ``max-in-flight`` requests can be outstanding, sends intended after the slots
ran out leave late (when the upstream resumes): about r (S - max_in_flight / r) of them.
A closed-model generator would have waited politely and reported a p99 near s.

Target: recorded p99 within 10 % of the analytic value; late sends counted.

The mock upstream runs here with uvicorn's keep-alive timeout raised to 120 s (the same
app as ``UpstreamServer``): with the default 5 s, the keep-alive timers of connections that
were idle when the process stopped expire the moment it resumes, before the requests that
arrived meanwhile are read, and those requests fail with "connection closed" instead of
being served late. That is uvicorn's behaviour, not the generator's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from observatory.domain import Window
from observatory.load.histogram import Histogram
from observatory.load.runner import start_load
from observatory.load.spool import read_spool
from observatory.settings import ScenarioSettings, Settings, UpstreamSettings

SERVICE_S = 0.010


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--stall", type=float, default=5.0)
    parser.add_argument("--at", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--max-in-flight", type=int, default=100)
    args = parser.parse_args(argv)
    upstream = UpstreamSettings(seed=5, latency={"distribution": "fixed", "mean": SERVICE_S})
    scenario = ScenarioSettings.model_validate(
        {
            "file": "chat.py",
            "profile": {
                "model": "open",
                "rate": args.rate,
                "arrival": "constant",
                "max_in_flight": args.max_in_flight,
            },
            "duration": args.seconds,
            "warmup": 1,
            "window": 5,
        }
    )
    with tempfile.TemporaryDirectory() as tmp, patient_upstream(upstream) as up:
        load = start_load(scenario, "stall", up.url, "sk-bench", Path(tmp), Settings())
        time.sleep(max(0.0, load.run_start + args.at - time.time()))
        stopped = time.monotonic()
        os.kill(up.pid, signal.SIGSTOP)
        try:
            time.sleep(args.stall)
        finally:
            os.kill(up.pid, signal.SIGCONT)
        stall = time.monotonic() - stopped
        if load.wait(args.seconds + 120) is None:
            load.kill()
            raise SystemExit("the run did not stop")
        windows = [r for r in read_spool(load.spool_path) if isinstance(r, Window)]
    report(windows, stall, args.rate, args.max_in_flight)


@dataclass(frozen=True)
class Upstream:
    url: str
    pid: int


SERVE = (
    "import sys, uvicorn\n"
    "from observatory.settings import UpstreamSettings\n"
    "from observatory.upstream.app import create_app\n"
    "settings = UpstreamSettings.model_validate_json(sys.argv[1])\n"
    "uvicorn.run(create_app(settings), host='127.0.0.1', port=int(sys.argv[2]),\n"
    "            loop='uvloop', http='httptools', lifespan='off', access_log=False,\n"
    "            log_level='warning', timeout_keep_alive=120)\n"
)


@contextlib.contextmanager
def patient_upstream(settings: UpstreamSettings) -> Iterator[Upstream]:
    """The mock upstream app under uvicorn with a 120 s keep-alive, in a child process."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen([sys.executable, "-c", SERVE, settings.model_dump_json(), str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/admin/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise SystemExit("the mock upstream did not start") from None
                time.sleep(0.1)
        yield Upstream(url, child.pid)
    finally:
        child.terminate()
        child.wait(10)


def merged(windows: list[Window], series: str) -> Histogram:
    histogram = Histogram()
    for window in windows:
        if window.series == series and window.histogram:
            histogram.merge(Histogram.decode(window.histogram))
    return histogram


def report(windows: list[Window], stall: float, rate: float, max_in_flight: int) -> None:
    latency = merged(windows, "latency")
    requests = sum(w.count for w in windows if w.series == "latency")
    failures = sum(w.failures for w in windows if w.series == "latency")
    late = sum(w.count for w in windows if w.series == "late")
    dropped = sum(w.count for w in windows if w.series == "dropped")
    analytic_ms = (stall + SERVICE_S - requests / (100.0 * rate)) * 1000.0
    recorded_ms = latency.percentile_ms(99.0)
    error = recorded_ms / analytic_ms - 1.0
    expected_late = max(0.0, rate * (stall - max_in_flight / rate))
    print(f"stall {stall:.3f} s at {rate:g}/s, {max_in_flight} slots; requests {requests}, "
          f"failures {failures}")  # fmt: skip
    print(f"p99 recorded {recorded_ms:9.1f} ms  analytic {analytic_ms:9.1f} ms  "
          f"error {error:+.1%}  (target within 10 %)")  # fmt: skip
    print(f"max  recorded {latency.max_ms():9.1f} ms  (stall + service {stall * 1000 + 10:.1f})")
    print(f"late sends {late} (expected about {expected_late:.0f}), dropped {dropped}")
    verdict = "PASS" if abs(error) <= 0.10 and late > 0 else "FAIL"
    print(verdict)


if __name__ == "__main__":
    main()
