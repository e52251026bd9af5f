"""Render one run page: out_dir/runs/<id>/index.html plus its raw windows as CSV."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from observatory.analysis.bursts import find_bursts
from observatory.domain import Finding
from observatory.report import charts as chart_data
from observatory.report.assets import TEMPLATES_DIR, publish_static, script_json, write_atomic
from observatory.report.downsample import DEFAULT_MAX_POINTS
from observatory.report.findings import MISSING, finding_rows, group_findings
from observatory.report.format import duration, timestamp
from observatory.report.headline import headline
from observatory.report.model import ErrorGroup, ReportInput
from observatory.report.redact import redact, redact_text
from observatory.report.summary import summarise
from observatory.report.timeline import failure_strips
from observatory.report.words import top_findings

CSV_COLUMNS = [
    "series",
    "name",
    "t",
    "length_s",
    "count",
    "failures",
    "p50",
    "p90",
    "p95",
    "p99",
    "p999",
    "max",
    "saturated",
    "histogram",
]
MAX_MESSAGES = 5


def environment() -> Environment:
    """The Jinja environment of every report page: autoescape on, unknown names fail."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "j2"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration
    env.filters["timestamp"] = timestamp
    return env


def run_dir(out_dir: Path, run_id: int) -> Path:
    return out_dir / "runs" / str(run_id)


def render_run_report(
    inp: ReportInput, out_dir: Path, *, max_points: int = DEFAULT_MAX_POINTS
) -> Path:
    """Write the run page, its windows.csv and summary.json; return the page's path."""
    publish_static(out_dir)
    target = run_dir(out_dir, inp.run.id)
    write_atomic(target / "windows.csv", windows_csv(inp))
    summary = summarise(inp.candidate, inp.analysis.findings)
    write_atomic(target / "summary.json", json.dumps(summary_record(inp, summary)))
    page = target / "index.html"
    write_atomic(page, render_run_html(inp, max_points=max_points))
    return page


def render_run_html(inp: ReportInput, *, max_points: int = DEFAULT_MAX_POINTS) -> str:
    charts = chart_data.build_charts(inp, max_points)
    template = environment().get_template("run.html.j2")
    return template.render(
        inp=inp,
        static="../../static",
        index="../../index.html",
        banner=(shown := banner(inp)),
        top=top_findings(inp.analysis.findings, reason=shown["reason"]),
        headline=headline(inp.analysis.findings),
        strips=failure_strips(inp.candidate, inp.errors, burst_lines(inp)),
        groups=group_findings(inp.analysis.findings),
        environment_rows=(env_rows := environment_rows(inp)),
        differing=sum(1 for row in env_rows if row["differs"]),
        missing=MISSING,
        errors=error_rows(inp.errors),
        sections=_sections(charts),
        phases=inp.candidate.phases,
        config_text=json.dumps(redact(dict(inp.config)), indent=2, sort_keys=True, default=str),
        parameters=redact(dict(inp.run.parameters)),
        profile=redact(dict(inp.run.profile)),
        permalink=_permalink(inp),
        chart_json=script_json({"charts": [asdict(c) for c in charts]}),
        generated_at=datetime.now(UTC),
    )


def burst_lines(inp: ReportInput) -> dict[str, str]:
    """Per request name, the analysis' description of its error bursts."""
    return {series.name: series.describe() for series in find_bursts(inp.candidate)}


def render_findings_table(findings: Sequence[Finding]) -> str:
    """The findings table alone (the fragment the run page includes)."""
    template = environment().get_template("_findings.html.j2")
    return template.render(findings=finding_rows(findings))


def summary_record(inp: ReportInput, summary: Any) -> dict[str, Any]:
    """What the index caches per run: valid while status and end time are unchanged."""
    return {
        "run_id": inp.run.id,
        "status": inp.run.status,
        "verdict": inp.run.verdict,
        "ended_at": None if inp.run.ended_at is None else inp.run.ended_at.isoformat(),
        **asdict(summary),
    }


def banner(inp: ReportInput) -> dict[str, str]:
    """The verdict banner: the verdict when there is one, else the lifecycle status."""
    verdict = inp.analysis.verdict or inp.run.verdict
    label = str(verdict) if verdict else inp.run.status
    reason = inp.analysis.reason or inp.run.end_reason or ""
    if inp.analysis.saturated and "saturated" not in reason:
        reason = f"{reason} (load generator saturated: measurements are not trustworthy)".strip()
    return {"kind": label, "label": label.replace("_", " ").upper(), "reason": reason}


def environment_rows(inp: ReportInput) -> list[dict[str, Any]]:
    """Candidate vs baseline environment, key by key, with differences flagged."""
    cand = _flatten(redact(dict(inp.run.environment)))
    base = _flatten(redact(dict(inp.baseline.environment))) if inp.baseline else {}
    rows = []
    for key in sorted(set(cand) | set(base)):
        c, b = _text(cand.get(key)), _text(base.get(key)) if inp.baseline else ""
        rows.append({"key": key, "candidate": c, "baseline": b, "differs": bool(base) and c != b})
    return rows


def _flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested fingerprints as dotted keys ("gateway.version"), so differences line up."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(redact(value), sort_keys=True, default=str)
    return redact_text(str(value))


def error_rows(groups: tuple[ErrorGroup, ...]) -> list[dict[str, Any]]:
    total = sum(g.count for g in groups) or 1
    ordered = sorted(groups, key=lambda g: (-g.count, g.category, g.name))
    return [
        {
            "group": g,
            "share": f"{100.0 * g.count / total:.1f} %",
            "first": duration(g.first_t) if g.first_t is not None else "",
            "messages": [redact_text(m) for m in g.messages[:MAX_MESSAGES]],
        }
        for g in ordered
    ]


def _sections(charts: list[chart_data.Chart]) -> list[tuple[str, list[chart_data.Chart]]]:
    sections: dict[str, list[chart_data.Chart]] = {}
    for chart in charts:
        sections.setdefault(chart.section, []).append(chart)
    return list(sections.items())


def _permalink(inp: ReportInput) -> str:
    prefix = inp.report_url_prefix
    if not prefix:
        return ""
    return f"{prefix.rstrip('/')}/runs/{inp.run.id}/index.html"


def windows_csv(inp: ReportInput) -> str:
    """Every stored window of the candidate, undownsampled; t is seconds since run start."""
    frame = inp.candidate.windows
    if frame.empty:
        return ",".join(CSV_COLUMNS) + "\n"
    columns = [c for c in CSV_COLUMNS if c in frame.columns]
    ordered = frame.sort_values(["series", "name", "t"], kind="stable")[columns].copy()
    ordered["name"] = ordered["name"].map(_spreadsheet_safe)
    text: str = ordered.to_csv(index=False, lineterminator="\n")
    return text


def _spreadsheet_safe(value: object) -> str:
    """A request name a spreadsheet will not run as a formula (CSV injection)."""
    text = str(value)
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
