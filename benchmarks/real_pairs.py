"""Detection rates on real side-by-side pairs that accumulate, one line per pair.

Usage: .venv/bin/python benchmarks/real_pairs.py record --database URL [--scenario power]
       .venv/bin/python benchmarks/real_pairs.py summary
       make bench-pair    # one more 35-minute pair on a quiet host, then record

``record`` analyses every completed side-by-side pair (``--baseline alongside``) of the
scenario that the results file does not hold yet: as it is (A/A) and with every injection
of detection_power (the classic targets and the shapes real regressions take, the latter
also on a host with busy neighbours in half of its 30 s blocks), and appends one JSON line
per pair: run ids, start, config hash, host fingerprint, length, host speed of both sides,
and each shape's verdict. ``summary`` computes each rate with its Clopper-Pearson 95 %
interval over all lines so far, per scenario and run length. The file is committed
(docs/benchmarks.md quotes the summary), so rates grow with every quiet hour of the host.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from detection_power import SCENARIOS, SHAPE_INJECTIONS, Rate, flagged

from observatory.analysis import RunData, analyse
from observatory.analysis.host_speed import cpu_per_request_ms
from observatory.analysis.injection import busy_share
from observatory.domain import Verdict
from observatory.settings import ThresholdSettings

RESULTS = Path(__file__).parent / "results" / "real_pairs.jsonl"
BUSY = " (busy host)"


def shapes() -> dict[str, Any]:
    """Every shape scored on a real pair: name -> injection (None: the pair as it is)."""
    out: dict[str, Any] = dict(SCENARIOS)
    for shape, inject in SHAPE_INJECTIONS.items():
        if inject is not None:
            out[shape] = inject
            out[shape + BUSY] = inject
    out["aa" + BUSY] = None
    return out


def judge(base: RunData, cand: RunData, seed: int) -> dict[str, dict[str, Any]]:
    """Each shape's verdict and whether it counts as caught, for one pair."""
    out = {}
    for shape, inject in shapes().items():
        b, c = base, cand if inject is None else inject(cand, seed)
        if shape.endswith(BUSY):  # side by side: one host, busy for both at once
            b, c = busy_share(b, 0.5, seed=seed), busy_share(c, 0.5, seed=seed)
        result = analyse(c, b, ThresholdSettings())
        caught = flagged(shape, result, c) if shape in SCENARIOS else None
        if caught is None:
            caught = result.verdict is Verdict.REGRESSION
        out[shape] = {"verdict": result.verdict.value, "flagged": bool(caught)}
    return out


def stored_pairs(url: str, scenario: str) -> Iterator[tuple[dict[str, Any], RunData, RunData]]:
    """(identity, baseline, candidate) of each completed side-by-side pair, oldest first."""
    from observatory.store.db import make_engine, session_factory, transaction
    from observatory.store.evidence import load_run_data
    from observatory.store.runs import side_by_side_pairs

    with transaction(session_factory(make_engine(url))) as session:
        for b, c in side_by_side_pairs(session, scenario):
            identity = {
                "scenario": scenario,
                "baseline_run": b.id,
                "candidate_run": c.id,
                "started_at": c.started_at.isoformat() if c.started_at else None,
                "config_hash": c.config_hash,
                "host": c.host_fingerprint,
                "duration_s": c.duration_s,
            }
            yield identity, load_run_data(session, b), load_run_data(session, c)


def _key(line: dict[str, Any]) -> tuple[Any, ...]:
    return (line["candidate_run"], line["started_at"], line["config_hash"])


def read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(row) for row in path.read_text(encoding="utf-8").splitlines() if row]


def record(url: str, scenario: str, path: Path) -> int:
    """Append a line for every stored pair not yet in ``path``; the number appended."""
    known = {_key(line) for line in read(path)}
    path.parent.mkdir(parents=True, exist_ok=True)
    added = 0
    for identity, base, cand in stored_pairs(url, scenario):
        if _key(identity) in known:
            continue
        speed = {"baseline": cpu_per_request_ms(base), "candidate": cpu_per_request_ms(cand)}
        line = {
            **identity,
            "host_speed_ms": speed,
            "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "shapes": judge(base, cand, seed=int(identity["candidate_run"])),
        }
        with path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(line, sort_keys=True) + "\n")
        added += 1
        print(f"pair {identity['baseline_run']}+{identity['candidate_run']}: recorded", flush=True)
    return added


def summary(lines: Sequence[dict[str, Any]]) -> str:
    """Per scenario and run length: each shape's rate with its interval, as a table."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = defaultdict(list)
    for line in lines:
        groups[(line["scenario"], float(line["duration_s"]))].append(line)
    parts = []
    for (scenario, seconds), group in sorted(groups.items()):
        parts.append(f"{scenario}, {seconds / 60:g}-minute pairs: {len(group)}")
        parts.append("| shape | flagged (regression) | inconclusive |")
        parts.append("| --- | --- | --- |")
        for shape in shapes():
            scored = [line["shapes"][shape] for line in group if shape in line["shapes"]]
            hits = sum(s["flagged"] for s in scored)
            unsure = sum(s["verdict"] == Verdict.INCONCLUSIVE.value for s in scored)
            parts.append(
                f"| {shape} | {Rate.of(hits, len(scored))} | {Rate.of(unsure, len(scored))} |"
            )
    return "\n".join(parts) if parts else "no pairs recorded yet"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="analyse new stored pairs and append their lines")
    rec.add_argument("--database", required=True, help="the store holding the pairs (URL)")
    rec.add_argument("--scenario", default="power")
    for command in (rec, commands.add_parser("summary", help="rates over all lines so far")):
        command.add_argument("--results", type=Path, default=RESULTS, help="the JSON lines file")
    args = parser.parse_args(argv)
    if args.command == "record":
        added = record(args.database, args.scenario, args.results)
        print(f"{added} new pair(s) in {args.results}")
    print(summary(read(args.results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
