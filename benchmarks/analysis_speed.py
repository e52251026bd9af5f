"""How long analyse() takes on a 24-hour run against a 24-hour baseline.

Usage: .venv/bin/python benchmarks/analysis_speed.py [--hours 24] [--repeat 3]

The runs are synthetic: 8,640 ten-second windows x 5 request names, every series
the load plugin records (latency, TTFT, inter-chunk, overhead), real encoded HDR
histograms on every window (so merging them costs what it will cost), and gateway
resources sampled every 5 s. Prints the best time of ``--repeat`` and its ratio
to the 10 s budget (below 1.0 is within budget).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from observatory.analysis import analyse
from observatory.analysis.synthetic import Endpoint, Profile, synthetic_run
from observatory.settings import ThresholdSettings

BUDGET_S = 10.0
ENDPOINTS = (
    Endpoint("chat", 10.0, 120.0, 0.35),
    Endpoint("chat_stream", 5.0, 400.0, 0.30, streaming=True),
    Endpoint("embeddings", 5.0, 60.0, 0.30),
    Endpoint("responses", 3.0, 150.0, 0.35),
    Endpoint("messages", 3.0, 130.0, 0.35, streaming=True),
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    profile = Profile(
        duration_s=args.hours * 3600, warmup_s=600.0, endpoints=ENDPOINTS, histograms=True
    )
    started = time.perf_counter()
    candidate = synthetic_run(profile, seed=1)
    baseline = synthetic_run(profile, seed=2)
    windows = candidate.windows
    print(
        f"built 2 runs of {args.hours:g} h in {time.perf_counter() - started:.1f} s: "
        f"{windows['t'].nunique()} windows x {windows['name'].nunique()} names, "
        f"{len(windows)} window rows, {len(candidate.resources)} resource samples per run"
    )
    thresholds = ThresholdSettings()
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        result = analyse(candidate, baseline, thresholds)
        best = min(best, time.perf_counter() - started)
    print(
        f"verdict {result.verdict}: {len(result.findings)} findings, "
        f"{len(result.change_points)} change points"
    )
    print(
        f"analyse(): best of {args.repeat}: {best:.2f} s; ratio to the {BUDGET_S:g} s "
        f"budget: {best / BUDGET_S:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
