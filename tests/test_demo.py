"""The demo path end to end, with short durations: two real LiteLLM releases from PyPI
and the stable one with a known fault (a broken deployment), compared with the same
baseline run.

Slow (two cached ~500 MB venvs; the first run installs them), but it runs in CI: it is
what `make demo` does, minus the minutes of load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_demo_validates_a_candidate_against_the_stable_release(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
    env["OBSERVATORY_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "observatory", "demo", "--duration", "40s"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, result.stderr[-3000:] + out[-3000:]
    assert len(out.splitlines()) < 60, out  # the story fits a screen
    assert "queued litellm-stable as the baseline, to run first" in out
    for run_id in (1, 2, 3):
        assert f"run {run_id}: done" in out
    assert "== run 2: litellm-candidate 1.83.14 vs litellm-stable 1.81.9 (run 1)" in out
    faulty = out.split("== run 3: litellm-stable-faulty 1.81.9 vs litellm-stable 1.81.9 (run 1)")[1]
    # The broken deployment fails about half of gpt-4o's requests: a regression, unless the
    # host was too busy to measure the gateway at all (then the run says so).
    disturbed = "busy on the host" in faulty or "saturated" in faulty
    assert "\nREGRESSION: " in faulty or disturbed, faulty
    assert "Slack message would send (Slack not configured):" in out
    assert "  | " in out  # the message as a channel shows it
    assert '"type": "header"' not in out  # its JSON only with --slack-json
    assert "no process left running" in out
    assert "\nOpen data/reports/runs/" in out
    report = tmp_path / "data" / "reports" / "runs" / "2" / "index.html"
    assert report.is_file()
    html = report.read_text()
    assert "litellm-candidate" in html
    assert "1.81.9" in html  # the baseline's version, side by side
    assert 'id="changed"' in html
    assert (tmp_path / "data" / "reports" / "index.html").is_file()
