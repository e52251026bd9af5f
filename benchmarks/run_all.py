"""`make bench`: every benchmark in turn, each comparing side by side within its own run.

The 2 cores of a CI host are shared, so no benchmark reports an absolute rate alone: each
prints its measurement next to a reference measured in the same run, as a ratio. Pass
benchmark names to run a subset (`make bench BENCH="analysis_speed report_size"`);
--long runs the long variants (30-minute memory slope, 400-run detection power).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# name -> (quick arguments, long arguments)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "upstream_cost": (["--rounds", "1"], []),
    "upstream_vs_gateway_cpu": (["--rounds", "1"], []),
    "load_overhead": ([], ["--seconds", "30", "--rounds", "5"]),
    "load_fidelity": ([], ["--seconds", "60"]),
    "load_stall": ([], []),
    "load_memory": (["--seconds", "120"], ["--minutes", "30"]),
    "analysis_speed": (["--repeat", "1"], []),
    "detection_power": (["--runs", "100"], ["--runs", "400"]),
    "report_size": (["--repeat", "1"], []),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help=f"subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--long", action="store_true", help="the long variants")
    args = parser.parse_args()
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    failed = []
    for name in args.names or list(BENCHMARKS):
        quick, long = BENCHMARKS[name]
        argv = [sys.executable, str(HERE / f"{name}.py"), *(long if args.long else quick)]
        print(f"\n=== {name} ({' '.join(argv[2:]) or 'defaults'})", flush=True)
        started = time.monotonic()
        code = subprocess.call(argv)
        print(f"=== {name}: exit {code} after {time.monotonic() - started:.0f}s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
