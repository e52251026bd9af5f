"""Detection power of analyse() against a naive single t-test, on A/A and A/B pairs.

Usage: .venv/bin/python benchmarks/detection_power.py [--runs 400] [--json out.json]
       .venv/bin/python benchmarks/detection_power.py --database URL --scenario NAME
       [--disturbed N | --side-by-side]

With --database, the runs are the stored, completed runs of that scenario (real runs,
separately started, same length and rate), in id order; since there are few of them, every
pair of runs within each half is used (tuning half, scoring half), not only disjoint ones.
With --side-by-side, the pairs are the stored (baseline, candidate) runs measured side by
side (``--baseline alongside``), in id order; the same runs are also scored "apart", every
baseline of the scoring half with every candidate of another pair (separately timed), so
one data set shows what measuring side by side buys.

Runs come from ``analysis.synthetic`` today; ``evaluate(runs)`` accepts any list of
RunData, so stored real runs (at least 10 separately started, same length and rate)
can be fed in unchanged. Disjoint consecutive runs form pairs (no run is used
twice in one scenario). A/A: (run i, run j) as they are. A/B: the second run of a
pair gets a known regression injected (analysis.injection). The pairs are split in
halves: thresholds are tuned on the first (the smallest common scale of the
default thresholds whose A/A false-positive rate is at most 1 %), and every rate
is scored on the second, with a Clopper-Pearson 95 % interval.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from observatory.analysis import Analysis, RunData, analyse
from observatory.analysis.injection import (
    add_errors,
    add_leak,
    busy_share,
    error_burst,
    error_bursts,
    scale_latency,
    step_memory,
)
from observatory.analysis.synthetic import Endpoint, Profile, synthetic_run
from observatory.analysis.thresholds import DEFAULTS
from observatory.domain import FindingVerdict, Series, Verdict
from observatory.settings import MetricThreshold, ThresholdSettings

FP_TARGET = 0.01
TARGETS = {
    "aa": FP_TARGET,
    "p99+10%": 0.90,
    "errors+0.5pp": 0.95,
    "spike@60%": 0.95,
    "leak20MB/h": 0.90,
}
SCALES = (0.6, 0.8, 1.0, 1.2, 1.5)
SPIKE_RATE = 0.02  # +2 percentage points ...
SPIKE_S = 300.0  # ... for five minutes
ONSET_WINDOWS = 2

Inject = Callable[[RunData, int], RunData]


def _spike_onset(run: RunData) -> float:
    """60 % into the run, on a window boundary."""
    return math.floor(0.6 * run.duration_s / run.window_s) * run.window_s


SCENARIOS: dict[str, Inject | None] = {
    "aa": None,
    "p99+10%": lambda run, seed: scale_latency(run, 1.10),
    "errors+0.5pp": lambda run, seed: add_errors(run, 0.005, from_s=run.warmup_s, seed=seed),
    "spike@60%": lambda run, seed: add_errors(
        run, SPIKE_RATE, from_s=_spike_onset(run), until_s=_spike_onset(run) + SPIKE_S, seed=seed
    ),
    "leak20MB/h": lambda run, seed: add_leak(run, 20.0),
}


# The shapes real regressions take (docs/benchmarks.md), each on runs like those it was seen
# in. Scored at the shipped defaults, no tuning; "busy": the candidate's host had busy
# neighbours (1.5 cores) in a random half of its 30 s blocks.
NEW_MESSAGE = "litellm.APIConnectionError: Connection reset by peer (injected)"
TWO_NAMES = (Endpoint("chat", 2.0, 120.0, 0.35), Endpoint("chat_b", 2.0, 120.0, 0.35))
SLOW_NAMES = (Endpoint("chat", 1.0, 120.0, 0.35), Endpoint("chat_b", 1.0, 120.0, 0.35))
SHAPE_PROFILES = {
    "4 min, 2 names at 2 req/s": Profile(
        duration_s=240.0, warmup_s=30.0, window_s=5.0, endpoints=TWO_NAMES
    ),
    "63 min, 2 names at 1 req/s": Profile(
        duration_s=63 * 60.0, warmup_s=300.0, window_s=10.0, endpoints=SLOW_NAMES
    ),
    "1 h, 20 req/s": Profile(),
    "3 min, 20 req/s": Profile(duration_s=180.0, warmup_s=30.0, window_s=5.0),
}


def _single_burst(run: RunData, seed: int) -> RunData:
    """5 failures in 24 s at 60 min (or at 90 % of a shorter run)."""
    return error_burst(run, _first_name(run), 5, at_s=min(3600.0, 0.9 * run.duration_s))


def _first_name(run: RunData) -> str:
    names = run.windows.loc[run.windows["series"] == Series.LATENCY, "name"]
    return str(sorted(set(names))[0])


SHAPE_INJECTIONS: dict[str, Inject | None] = {
    "aa": None,
    "bursty errors on 1 of 2 names": lambda run, seed: error_bursts(
        run, _first_name(run), seed=seed
    ),
    "single burst, 5 failures in 24 s": _single_burst,
    "new error message at 0.1 %": lambda run, seed: add_errors(
        run, 0.001, from_s=run.warmup_s, seed=seed, category="http_500", message=NEW_MESSAGE
    ),
    "memory level +20 %": lambda run, seed: step_memory(run, 0.20),
}
# (shape, profile, target); each is also scored on a busy host
SHAPES = (
    ("aa", "4 min, 2 names at 2 req/s", FP_TARGET),
    ("aa", "63 min, 2 names at 1 req/s", FP_TARGET),
    ("aa", "1 h, 20 req/s", FP_TARGET),
    ("aa", "3 min, 20 req/s", FP_TARGET),
    ("bursty errors on 1 of 2 names", "4 min, 2 names at 2 req/s", 0.95),
    ("single burst, 5 failures in 24 s", "63 min, 2 names at 1 req/s", 0.90),
    ("new error message at 0.1 %", "1 h, 20 req/s", 0.90),
    ("memory level +20 %", "3 min, 20 req/s", 0.95),
)


# Stored real runs (--database) are scored on the classic scenarios and the shapes alike.
ON_REAL: dict[str, Inject | None] = {
    **SCENARIOS,
    **{shape: inject for shape, inject in SHAPE_INJECTIONS.items() if inject is not None},
}
SHAPE_TARGETS = {shape: target for shape, _, target in SHAPES if shape != "aa"}


def shaped(shape: str, run: RunData, seed: int, busy: bool) -> RunData:
    """``run`` with the shape injected, on a busy host if asked."""
    inject = SHAPE_INJECTIONS[shape]
    out = run if inject is None else inject(run, seed)
    return busy_share(out, 0.5, seed=seed) if busy else out


SPEED_BOUND = ("latency_", "ttft_", "inter_chunk_", "overhead", "cpu", "throughput")
ShapeRow = tuple[str, str, bool, float, "Rate", "Rate", "Rate"]


def by_new_rules(result: Analysis) -> bool:
    """A regression through a finding a busy host cannot cause (errors, memory, crash)."""
    return result.verdict is Verdict.REGRESSION and any(
        f.verdict is FindingVerdict.REGRESSION
        and not f.metric.removeprefix("change.").removeprefix("drift.").startswith(SPEED_BOUND)
        for f in result.findings
    )


def score_shapes(pairs: int, seed: int) -> list[ShapeRow]:
    """(shape, profile, busy, target, flagged, by errors/memory, inconclusive) per shape."""
    rows = []
    for shape, label, target in SHAPES:
        profile = SHAPE_PROFILES[label]
        runs = [synthetic_run(profile, seed=seed + i) for i in range(2 * pairs)]
        for busy in (False, True):
            results = [
                analyse(shaped(shape, cand, seed + i, busy), base, ThresholdSettings())
                for i, (base, cand) in enumerate(pairs_of(runs))
            ]
            n = len(results)
            flagged = Rate.of(sum(r.verdict is Verdict.REGRESSION for r in results), n)
            new = Rate.of(sum(by_new_rules(r) for r in results), n)
            unsure = Rate.of(sum(r.verdict is Verdict.INCONCLUSIVE for r in results), n)
            rows.append((shape, label, busy, target, flagged, new, unsure))
            host = "busy" if busy else "quiet"
            print(
                f"  {shape:34s} {label:28s} {host:5s} {flagged}  errors/memory {new}  "
                f"inconclusive {unsure}",
                flush=True,
            )
    return rows


def shapes_table(rows: list[ShapeRow]) -> str:
    lines = [
        "| shape | runs | host | target | flagged (regression) | by errors or memory "
        "| inconclusive |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for shape, label, busy, target, flagged, new, unsure in rows:
        kind = "<=" if shape == "aa" else ">="
        host = "busy neighbours in 50 % of windows" if busy else "quiet"
        lines.append(
            f"| {shape} | {label} | {host} | {kind} {target:.0%} | {flagged} | {new} | {unsure} |"
        )
    return "\n".join(lines)


def scaled_thresholds(scale: float) -> ThresholdSettings:
    """The default thresholds, all multiplied by ``scale``."""
    metrics = {
        metric: MetricThreshold(
            relative=None if t.relative is None else t.relative * scale,
            absolute=None if t.absolute is None else t.absolute * scale,
        )
        for metric, t in DEFAULTS.items()
    }
    return ThresholdSettings(metrics=metrics)


def flagged_by_analysis(scenario: str, base: RunData, cand: RunData, th: ThresholdSettings) -> bool:
    return flagged(scenario, analyse(cand, base, th), cand)


def flagged(scenario: str, result: Analysis, cand: RunData) -> bool:
    if scenario != "spike@60%":
        return result.verdict is Verdict.REGRESSION
    onset = _spike_onset(cand)
    return result.verdict is Verdict.REGRESSION and any(
        f.verdict is FindingVerdict.REGRESSION
        and f.metric == "change.error_rate"
        and f.at_s is not None
        and abs(f.at_s - onset) <= ONSET_WINDOWS * cand.window_s
        for f in result.findings
    )


def _window_values(run: RunData, series: str, name: str, column: str) -> np.ndarray:
    w = run.windows
    rows = w[(w["series"] == series) & (w["name"] == name) & (w["t"] >= run.warmup_s)]
    if column == "error_rate":
        return (rows["failures"] / rows["count"].where(rows["count"] > 0)).dropna().to_numpy()
    return rows[column].to_numpy(dtype=float)


def _gateway(run: RunData, column: str) -> np.ndarray:
    r = run.resources
    rows = r[(r["role"] == "gateway") & (r["t"] >= run.warmup_s)]
    return rows[column].dropna().to_numpy(dtype=float)


def flagged_by_t_test(base: RunData, cand: RunData, alpha: float = 0.05) -> bool:
    """The naive gate: one Welch t-test per metric on per-window values, no threshold,
    no correction; the run is flagged if any metric got significantly worse."""
    pairs = []
    for name in sorted(set(cand.windows["name"])):
        for column in ("p50", "p95", "p99", "error_rate"):
            pairs.append(
                (
                    _window_values(base, Series.LATENCY, name, column),
                    _window_values(cand, Series.LATENCY, name, column),
                )
            )
    pairs += [(_gateway(base, c), _gateway(cand, c)) for c in ("rss_mb", "cpu_percent")]
    for b, c in pairs:
        if b.size > 2 and c.size > 2 and np.ptp(np.concatenate([b, c])) > 0:
            result = stats.ttest_ind(c, b, equal_var=False)
            if result.pvalue < alpha and c.mean() > b.mean():
                return True
    return False


@dataclass
class Rate:
    hits: int
    n: int
    low: float
    high: float

    @classmethod
    def of(cls, hits: int, n: int) -> Rate:
        if n == 0:
            return cls(0, 0, math.nan, math.nan)
        ci = stats.binomtest(hits, n).proportion_ci(confidence_level=0.95, method="exact")
        return cls(hits, n, float(ci.low), float(ci.high))

    def __str__(self) -> str:
        if self.n == 0:
            return "n/a"
        return f"{self.hits / self.n:6.1%} [{self.low:.1%}, {self.high:.1%}] ({self.hits}/{self.n})"


Scores = dict[str, dict[str, Rate]]


def all_pairs(runs: Sequence[RunData]) -> list[tuple[RunData, RunData]]:
    """Every pair (i < j): for a few real runs, where disjoint pairs would be too few."""
    return [(runs[i], runs[j]) for i in range(len(runs)) for j in range(i + 1, len(runs))]


def stored_runs(url: str, scenario: str) -> list[RunData]:
    """Completed runs of ``scenario`` in a store, oldest first."""
    from sqlalchemy import select

    from observatory.store.db import make_engine, session_factory, transaction
    from observatory.store.evidence import load_run_data
    from observatory.store.tables import Run

    sessions = session_factory(make_engine(url))
    with transaction(sessions) as session:
        query = select(Run).where(Run.scenario == scenario, Run.status == "done")
        return [load_run_data(session, run) for run in session.scalars(query.order_by(Run.id))]


def stored_side_by_side(url: str, scenario: str) -> list[tuple[RunData, RunData]]:
    """(baseline, candidate) of each completed side-by-side pair of ``scenario``, oldest first.

    Only pairs of the most common length: rates are stated for one length and rate.
    """
    from observatory.store.db import make_engine, session_factory, transaction
    from observatory.store.evidence import load_run_data
    from observatory.store.runs import side_by_side_pairs

    sessions = session_factory(make_engine(url))
    with transaction(sessions) as session:
        rows = side_by_side_pairs(session, scenario)
        lengths = Counter(c.duration_s for _, c in rows)
        length = lengths.most_common(1)[0][0] if lengths else 0.0
        if len(lengths) > 1:
            print(f"pairs of {length:g} s only; left out: {dict(lengths)}")
        return [
            (load_run_data(session, b), load_run_data(session, c))
            for b, c in rows
            if c.duration_s == length
        ]


def evaluate_side_by_side(pairs: Sequence[tuple[RunData, RunData]]) -> Evaluation:
    """Tune on the first half of the pairs, score on the second; then the same runs apart."""
    half = len(pairs) // 2
    print(f"{len(pairs)} side-by-side pairs: tune on {half}, score on {len(pairs) - half}")
    scale = tune(pairs[:half])
    scored = score(pairs[half:], scaled_thresholds(scale), scenarios=ON_REAL)
    defaults = (
        score(pairs[half:], ThresholdSettings(), scenarios=ON_REAL) if scale != 1.0 else scored
    )
    later = pairs[half:]
    apart = [(b, c) for i, (b, _) in enumerate(later) for j, (_, c) in enumerate(later) if i != j]
    print(
        f"the scoring half's runs apart (each baseline with other pairs' candidates): {len(apart)}"
    )
    score(apart, ThresholdSettings(), scenarios=ON_REAL)
    needed_length(pairs)
    return Evaluation(scale=scale, tuned=scored, defaults=defaults)


# For a +10 % p99 change to clear the rule (estimate beyond 6 %, interval beyond 3 %) in
# 90 % of pairs, the estimate's standard error must be at most (10 - 3) / (1.96 + 1.28) %.
P99_CHANGE, P99_FLOOR = 0.10, 0.03
NEEDED_HALF_WIDTH = 1.96 * (P99_CHANGE - P99_FLOOR) / (1.96 + float(stats.norm.isf(0.10)))


def needed_length(pairs: Sequence[tuple[RunData, RunData]]) -> None:
    """How long runs like these must be for p99 +10 % to be found in 90 % of A/A pairs.

    The interval's half-width shrinks with the square root of the number of steady windows.
    """
    widths = [
        (f.ci_high - f.ci_low) / 2
        for base, cand in pairs
        for f in analyse(cand, base, ThresholdSettings()).findings
        if f.metric == "latency_p99" and f.ci_low is not None and f.ci_high is not None
    ]
    if not widths:
        return
    base = pairs[0][0]
    windows = (base.duration_s - base.warmup_s) / base.window_s
    half = float(np.median(widths))
    needed = windows * (half / NEEDED_HALF_WIDTH) ** 2
    minutes = (needed * base.window_s + base.warmup_s) / 60
    print(
        f"latency_p99 intervals: median half-width {half:.1%} over {windows:.0f} steady windows;"
        f" +10 % found in 90 % of pairs needs about {NEEDED_HALF_WIDTH:.1%}, i.e. "
        f"{needed:.0f} windows: runs of about {minutes:.0f} minutes at this rate"
    )


def evaluate_real(runs: Sequence[RunData]) -> Evaluation:
    """Tune on all pairs of the first half of the runs, score on all pairs of the second."""
    half = len(runs) // 2
    tuning, scoring = all_pairs(runs[:half]), all_pairs(runs[half:])
    print(f"{len(runs)} real runs: tune on {len(tuning)} pairs, score on {len(scoring)}")
    scale = tune(tuning)
    scored = score(scoring, scaled_thresholds(scale), scenarios=ON_REAL)
    defaults = score(scoring, ThresholdSettings(), scenarios=ON_REAL) if scale != 1.0 else scored
    return Evaluation(scale=scale, tuned=scored, defaults=defaults)


def neighbour_check(clean: Sequence[RunData], disturbed: Sequence[RunData]) -> None:
    """A/A pairs (clean baseline, disturbed candidate): verdicts with the check on and off."""
    pairs = [(base, cand) for cand in disturbed for base in clean]
    print(f"{len(pairs)} A/A pairs of a clean baseline and a disturbed candidate:")
    for label, limit in (("neighbour check on", ThresholdSettings().neighbour_cpu), ("off", None)):
        th = ThresholdSettings(neighbour_cpu=limit)
        verdicts = [analyse(cand, base, th).verdict for base, cand in pairs]
        flagged = Rate.of(verdicts.count(Verdict.REGRESSION), len(pairs))
        unsure = Rate.of(verdicts.count(Verdict.INCONCLUSIVE), len(pairs))
        print(f"  {label:18s} regression {flagged}   inconclusive {unsure}")


def pairs_of(runs: Sequence[RunData]) -> list[tuple[RunData, RunData]]:
    """Disjoint consecutive pairs: (run 0, run 1), (run 2, run 3), ..."""
    return [(runs[i], runs[i + 1]) for i in range(0, len(runs) - 1, 2)]


def tune(pairs: Sequence[tuple[RunData, RunData]]) -> float:
    """The smallest threshold scale whose A/A false-positive rate is at most FP_TARGET."""
    allowed = math.floor(FP_TARGET * len(pairs))
    for scale in SCALES:
        th = scaled_thresholds(scale)
        flags = sum(flagged_by_analysis("aa", a, b, th) for a, b in pairs)
        print(f"  tune: scale {scale:g}: {flags}/{len(pairs)} A/A pairs flagged", flush=True)
        if flags <= allowed:
            return scale
    return SCALES[-1]


def score(
    pairs: Sequence[tuple[RunData, RunData]],
    th: ThresholdSettings,
    seed: int = 0,
    scenarios: dict[str, Inject | None] = SCENARIOS,
) -> Scores:
    """Per scenario: how often the analysis and the naive t-test flag the pair."""
    out: Scores = {}
    for scenario, inject in scenarios.items():
        ours = naive = unsure = 0
        for i, (base, run) in enumerate(pairs):
            cand = run if inject is None else inject(run, seed + i)
            result = analyse(cand, base, th)
            ours += flagged(scenario, result, cand)
            unsure += result.verdict is Verdict.INCONCLUSIVE
            naive += flagged_by_t_test(base, cand)
        out[scenario] = {
            "analysis": Rate.of(ours, len(pairs)),
            "t_test": Rate.of(naive, len(pairs)),
            "inconclusive": Rate.of(unsure, len(pairs)),
        }
        print(
            f"  score: {scenario:13s} analysis {out[scenario]['analysis']}   "
            f"t-test {out[scenario]['t_test']}   inconclusive {out[scenario]['inconclusive']}",
            flush=True,
        )
    return out


@dataclass
class Evaluation:
    scale: float  # the tuned common scale of the default thresholds
    tuned: Scores  # scored on the second half with the tuned thresholds
    defaults: Scores  # scored on the second half with the defaults (scale 1)


def evaluate(runs: Sequence[RunData]) -> Evaluation:
    """Tune on the first half of the pairs, score on the second half."""
    pairs = pairs_of(runs)
    half = len(pairs) // 2
    print(f"{len(runs)} runs -> {len(pairs)} pairs: tune on {half}, score on {len(pairs) - half}")
    scale = tune(pairs[:half])
    scored = score(pairs[half:], scaled_thresholds(scale))
    defaults = score(pairs[half:], ThresholdSettings()) if scale != 1.0 else scored
    return Evaluation(scale=scale, tuned=scored, defaults=defaults)


def _table(result: Evaluation) -> str:
    lines = [
        f"| scenario | target | analysis (tuned, x{result.scale:g}) | analysis (defaults) "
        "| naive t-test | inconclusive (defaults) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    tuned, defaults = result.tuned, result.defaults
    for scenario in tuned:
        target = TARGETS.get(scenario, SHAPE_TARGETS.get(scenario, math.nan))
        kind = "<=" if scenario == "aa" else ">="
        lines.append(
            f"| {scenario} | {kind} {target:.0%} | {tuned[scenario]['analysis']} | "
            f"{defaults[scenario]['analysis']} | {tuned[scenario]['t_test']} | "
            f"{defaults[scenario]['inconclusive']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=400, help="synthetic runs (pairs = runs/2)")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", help="write the result here as JSON")
    parser.add_argument("--minutes", type=float, default=60.0, help="length of a run")
    parser.add_argument(
        "--aa-only", action="store_true", help="only the A/A false-positive rate, at defaults"
    )
    parser.add_argument("--database", help="evaluate the stored runs of --scenario in this DB")
    parser.add_argument("--scenario", default="power")
    parser.add_argument(
        "--side-by-side",
        action="store_true",
        help="evaluate the stored side-by-side pairs (--baseline alongside) of --scenario",
    )
    parser.add_argument(
        "--disturbed",
        type=int,
        default=0,
        help="the last N stored runs shared the host with other work: pair each with every "
        "clean run of the scoring half, with and without the neighbour check",
    )
    parser.add_argument(
        "--shapes",
        type=int,
        default=0,
        metavar="PAIRS",
        help="score the real shapes (bursts, new messages, memory levels) on PAIRS pairs each",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.shapes:
        print(shapes_table(score_shapes(args.shapes, args.seed)))
        print(f"took {time.perf_counter() - started:.0f} s")
        return 0
    if args.database and args.side_by_side:
        print(_table(evaluate_side_by_side(stored_side_by_side(args.database, args.scenario))))
        return 0
    if args.database:
        real = stored_runs(args.database, args.scenario)
        print(f"{len(real)} stored runs of {args.scenario!r}")
        clean, disturbed = real[: len(real) - args.disturbed], real[len(real) - args.disturbed :]
        print(_table(evaluate_real(clean)))
        if disturbed:
            neighbour_check(clean[len(clean) // 2 :], disturbed)
        return 0
    profile = Profile(duration_s=args.minutes * 60, warmup_s=min(300.0, args.minutes * 6))
    runs = [synthetic_run(profile, seed=args.seed + i) for i in range(args.runs)]
    print(
        f"profile: {profile.duration_s / 60:g} min runs, {profile.window_s:g} s windows, "
        f"warm-up {profile.warmup_s:g} s, {sum(e.rate for e in profile.endpoints):g} req/s "
        f"over {len(profile.endpoints)} names"
    )
    if args.aa_only:
        score(pairs_of(runs), ThresholdSettings(), scenarios={"aa": None})
        print(f"took {time.perf_counter() - started:.0f} s")
        return 0
    result = evaluate(runs)
    print(_table(result))
    print(f"took {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(asdict(result), out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
