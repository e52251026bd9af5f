"""A real regression on a busy host: `observatory run` of a gateway whose client cache closes
one model's client while it is in use, against the same gateway without the bug, while a
CPU burner runs beside both. Errors are what a busy host cannot cause: exit 1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.test_pipeline import GATEWAY

TWO_MODELS = Path(__file__).parent / "fixtures" / "two_models.py"
CLOSING = "--close-model gpt-4o --close-every 5 --close-for 2"

CONFIG = f"""
data_dir: data
gateways:
  toy: {{kind: openai, package: toy-gateway, readiness_timeout: 30s}}
builds:
  clean: {{gateway: toy, command: "{GATEWAY}", version: "1.0", channel: stable}}
  closing: {{gateway: toy, command: "{GATEWAY} {CLOSING}", version: "1.1"}}
upstream:
  seed: 7
  latency: {{distribution: fixed, mean: 5ms}}
scenarios:
  two-models:
    file: {TWO_MODELS}
    profile: {{model: closed, users: 2, spawn_rate: 2, wait_min: 20ms, wait_max: 20ms}}
    duration: 20s
    warmup: 2s
    window: 1s
abort: {{error_rate: 0.95, sustained: 5s}}
load: {{sample_interval: 1s}}
"""
# Busy on one core for at most two minutes (the test stops it as soon as the run ends).
BURNER = "import time\nend = time.time() + 120\nwhile time.time() < end:\n    pass\n"


def test_bursts_of_closed_clients_on_one_model_beside_a_cpu_burner_fail_the_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "observatory.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    burner = subprocess.Popen([sys.executable, "-c", BURNER])
    try:
        args = ("run", "--build", "closing", "--scenario", "two-models")
        result = _observatory(tmp_path, env, *args)
    finally:
        burner.kill()
        burner.wait()
    assert result.returncode == 1, result.stdout + result.stderr[-3000:]
    line = result.stdout.splitlines()[-2] if "report:" in result.stdout else result.stdout
    assert "verdict=regression" in line
    assert "chat:gpt-4o: " in line
    assert "requests failed" in line
    assert "vs 0 of " in line  # the baseline never failed
    assert (
        'new error "APIConnectionError: Cannot send a request, as the client has been closed.'
        in line
    )
    db = tmp_path / "data" / "observatory.db"
    with create_engine(f"sqlite:///{db}").connect() as conn:
        rows = conn.execute(
            text("SELECT metric, name, verdict FROM findings WHERE verdict = 'regression'")
        ).all()
        shared = conn.execute(
            text("SELECT count(*) FROM resource_samples WHERE role = 'neighbours'")
        ).scalar_one()
    compared = _observatory(tmp_path, env, "compare", "2")
    assert compared.returncode == 1, compared.stderr[-2000:]
    assert "error bursts of chat:gpt-4o: " in compared.stdout
    assert " bursts of ~" in compared.stdout
    reason = line.split("verdict=regression: ")[1]
    listed = _observatory(tmp_path, env, "runs", "list")
    assert reason in listed.stdout  # the same line as the run's verdict
    assert ("error_rate", "chat:gpt-4o", "regression") in rows
    assert ("new_failure", "chat:gpt-4o", "regression") in rows
    assert not [r for r in rows if r[1] == "chat:gpt-4o-mini"]  # the other model is fine
    assert shared > 0


def _observatory(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "observatory", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
