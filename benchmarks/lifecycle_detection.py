"""Lifecycle faults at default settings: does one side-by-side run with a built-in scenario
catch each? (Targets: a per-deployment client TTL of 60 s within 4 minutes, a stream slot
leaked per abandoned stream within 10 minutes, a 100x rise of log bytes per request.)

    python benchmarks/lifecycle_detection.py [CASE ...] [--data DIR]

Each case runs ``observatory run --baseline alongside`` on a config of its own: the
lifecycle toy gateway of the test suite (tests/fixtures/lifecycle_gateway.py) as the stable
build, the same gateway with the fault as the candidate, the scenario with its default
params, and prints the exit code (1 = regression) with the verdict line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "fixtures" / "lifecycle_gateway.py"
COMMAND = f"{sys.executable} {TOY} --host {{host}} --port {{port}} --config {{config}}"

# name -> (scenario file, sound gateway flags, faulty gateway flags, duration)
CASES: dict[str, tuple[str, str, str, str]] = {
    "ttl": ("lifecycle.py", "", "--client-ttl 60", "4m"),
    "ttl-chat": ("chat.py", "", "--client-ttl 60", "4m"),  # the same fault, plain traffic
    "leak": ("lifecycle.py", "--stream-slots 100", "--stream-slots 100 --leak-abandoned", "10m"),
    "log": ("lifecycle.py", "--log-bytes 160", "--log-bytes 16000", "4m"),
}

CONFIG = """
data_dir: {data}
gateways:
  toy: {{kind: openai, readiness_timeout: 30s, timing_header: null, fleet: 250}}
builds:
  sound: {{gateway: toy, command: "{command} {sound}", version: "1", channel: stable}}
  faulty: {{gateway: toy, command: "{command} {faulty}", version: "2"}}
scenarios:
  case:
    file: {file}
    profile: {{model: open, rate: 12, arrival: poisson, max_in_flight: 100}}
    duration: {duration}
"""


def run_case(name: str, data: Path) -> tuple[int, str, float]:
    file, sound, faulty, duration = CASES[name]
    folder = data / name
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "observatory.yaml"
    config.write_text(
        CONFIG.format(
            data=folder / "data", command=COMMAND, sound=sound, faulty=faulty,
            file=file, duration=duration,
        )
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    argv = [sys.executable, "-m", "observatory", "--config", str(config), "run"]
    argv += ["--build", "faulty", "--scenario", "case", "--baseline", "alongside"]
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if "verdict=" in line]
    return done.returncode, lines[-1] if lines else done.stderr[-300:], time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", nargs="*", help=f"subset of: {', '.join(CASES)}")
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bench-lifecycle")
    args = parser.parse_args()
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    for name in args.cases or list(CASES):
        code, line, seconds = run_case(name, args.data)
        print(f"{name:9s} exit {code}  ({seconds:.0f} s)  {line}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
