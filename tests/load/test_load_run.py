"""Real Locust runs (seconds long) against the real mock upstream on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from load_support import API_KEY, Upstream, scenario
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from observatory.domain import ErrorSample, Window
from observatory.load.histogram import Histogram
from observatory.load.runner import LoadProcess, start_load
from observatory.load.spool import read_spool
from observatory.settings import LoadSettings, ScenarioSettings, Settings
from observatory.store.samples import add_error_samples, add_windows
from observatory.store.tables import Build, Run, WindowRow
from observatory.upstream.server import UpstreamServer

MakeScenario = Callable[..., ScenarioSettings]


@dataclass
class Finished:
    load: LoadProcess
    returncode: int
    records: list[Window | ErrorSample]
    served: int
    settings: Settings

    def windows(self, series: str = "latency") -> list[Window]:
        return [r for r in self.records if isinstance(r, Window) and r.series == series]

    def count(self, series: str = "latency") -> int:
        return sum(w.count for w in self.windows(series))


def _run(
    scenario_: ScenarioSettings, upstream: Upstream, run_dir: Path, settings: Settings
) -> Finished:
    load = start_load(scenario_, "test", upstream.url, API_KEY, run_dir, settings, stop_timeout=10)
    code = load.wait(scenario_.duration + 60)
    if code is None:
        load.kill()
        pytest.fail("the load run did not stop by itself")
    time.sleep(0.2)  # the upstream counts a request once its response is written
    return Finished(load, code, list(read_spool(load.spool_path)), _served(upstream), settings)


def _served(upstream: Upstream) -> int:
    return int(upstream.stats()["requests_total"])


@pytest.fixture(scope="module")
def chat_run(upstream_server: UpstreamServer, tmp_path_factory: pytest.TempPathFactory) -> Finished:
    upstream = Upstream(upstream_server.url)
    upstream.reset()
    settings = Settings(load=LoadSettings(cpu_affinity=[0]))
    run_dir = tmp_path_factory.mktemp("chat-run")
    return _run(scenario("chat.py", duration=4, processes=2), upstream, run_dir, settings)


def test_window_counts_equal_what_the_upstream_served(chat_run: Finished) -> None:
    assert chat_run.returncode == 0
    assert chat_run.served > 50
    assert chat_run.count("latency") == chat_run.served
    assert sum(w.failures for w in chat_run.windows()) == 0
    # the mock upstream names its service time: the overhead series covers every request
    assert chat_run.count("overhead") == chat_run.served
    assert chat_run.count("tokens") == chat_run.served


def test_windows_align_to_the_run_start_and_each_key_is_written_once(chat_run: Finished) -> None:
    windows = chat_run.windows()
    starts = sorted({w.start.timestamp() for w in windows})
    offsets = [round(s - chat_run.load.run_start, 6) for s in starts]
    assert all(offset == int(offset) for offset in offsets)  # 1 s windows from run start
    assert max(offsets) <= 3
    keys = [(r.series, r.name, r.start) for r in chat_run.records if isinstance(r, Window)]
    assert len(keys) == len(set(keys))
    for window in windows:
        histogram = Histogram.decode(window.histogram)
        assert histogram.count == window.count - window.failures
        assert 10.0 <= window.p50 <= window.p99 <= window.max


def test_final_status_affinity_and_no_secret_on_disk(chat_run: Finished) -> None:
    status = chat_run.load.status()
    assert status["state"] == "stopped"
    assert status["requests"] == chat_run.served
    assert status["remaining_s"] == 0
    meta = json.loads((chat_run.load.run_dir / "load.json").read_text())
    assert meta["cpu_affinity"] == [0]
    assert meta["processes"] == 2
    for path in chat_run.load.run_dir.iterdir():
        assert API_KEY not in path.read_text(errors="replace"), path.name


def test_spool_ingests_into_the_store_idempotently(
    chat_run: Finished, sessions: sessionmaker[Session]
) -> None:
    windows = [r for r in chat_run.records if isinstance(r, Window)]
    errors = [r for r in chat_run.records if isinstance(r, ErrorSample)]
    with sessions.begin() as session:
        build = Build(name="b", gateway="litellm", version="1", provision_kind="url",
                      provision="http://127.0.0.1")  # fmt: skip
        session.add(build)
        session.flush()
        run = Run(build_id=build.id, scenario="chat", profile={}, duration_s=4,
                  warmup_s=1, window_s=1)  # fmt: skip
        session.add(run)
        session.flush()
        run_id = run.id
        assert add_windows(session, run_id, windows) == len(windows)
        add_error_samples(session, run_id, errors)
    with sessions.begin() as session:  # replaying the whole spool changes nothing
        assert add_windows(session, run_id, list(read_spool(chat_run.load.spool_path))) == 0
        total = session.scalar(
            select(func.sum(WindowRow.count)).where(
                WindowRow.run_id == run_id, WindowRow.series == "latency"
            )
        )
    assert total == chat_run.served


def test_streaming_records_ttft_and_every_inter_chunk_gap(
    upstream: Upstream, tmp_path: Path, settings: Settings, make_scenario: MakeScenario
) -> None:
    done = _run(make_scenario("chat_stream.py", duration=3), upstream, tmp_path, settings)
    requests = done.count("latency")
    assert requests == done.served > 10
    assert done.count("ttft") == requests
    assert done.count("inter_chunk") == 4 * requests  # 5 content chunks: 4 gaps each
    assert done.count("tokens") == requests
    ttft = done.windows("ttft")[-1]
    gaps = done.windows("inter_chunk")[-1]
    # the mock sends the first chunk 20 ms after the headers, then one every 10 ms
    assert 20.0 <= ttft.p50 < 80.0
    assert 8.0 <= gaps.p50 < 40.0
    latency = done.windows("latency")[-1]
    assert latency.p50 >= ttft.p50 + 3 * 8.0


@pytest.mark.parametrize(
    "file", ["embeddings.py", "responses.py", "anthropic_messages.py", "mixed.py"]
)
def test_every_scenario_runs_against_the_mock_upstream(
    upstream: Upstream, tmp_path: Path, settings: Settings, make_scenario: MakeScenario, file: str
) -> None:
    done = _run(make_scenario(file, duration=2), upstream, tmp_path, settings)
    assert done.returncode == 0
    assert done.count("latency") == done.served > 5
    assert sum(w.failures for w in done.windows()) == 0


def test_open_model_counts_late_and_dropped_sends_when_the_upstream_stalls(
    upstream: Upstream, tmp_path: Path, settings: Settings, make_scenario: MakeScenario
) -> None:
    upstream.faults(stall_rate=1.0, stall=1.0)  # every request waits 1 s before its headers
    profile = {"model": "open", "rate": 40, "arrival": "constant", "max_in_flight": 8}
    params = {"drop_after": 0.5, "late_after_ms": 10}
    done = _run(
        make_scenario("chat.py", duration=3, profile=profile, params=params),
        upstream,
        tmp_path,
        settings,
    )
    # 8 slots each sending once a second cannot keep 40/s: sends wait for a slot (late),
    # and those waiting longer than 0.5 s are given up (dropped), never sent.
    assert done.count("latency") == done.served > 0
    assert done.count("late") > 0
    dropped = done.windows("dropped")
    assert {w.name for w in dropped} == {"*"}
    assert sum(w.count for w in dropped) > 20
    assert min(w.p50 for w in done.windows("latency")) >= 1000.0  # counted from intended


def test_stop_drains_in_flight_requests_and_keeps_every_window(
    upstream: Upstream, tmp_path: Path, settings: Settings, make_scenario: MakeScenario
) -> None:
    load = start_load(
        make_scenario("chat.py", duration=60, processes=2), "chat", upstream.url, API_KEY,
        tmp_path, settings, stop_timeout=10,
    )  # fmt: skip
    _await(lambda: load.status().get("windows_written", 0) >= 2, 30)
    assert load.stop(grace=30) == 0
    time.sleep(0.2)
    records = list(read_spool(load.spool_path))
    latency = sum(r.count for r in records if isinstance(r, Window) and r.series == "latency")
    assert latency == _served(upstream) > 0
    assert load.status()["state"] == "stopped"
    assert not psutil.pid_exists(load.pid) or psutil.Process(load.pid).status() == "zombie"


def test_kill_9_of_the_load_generator_keeps_every_completed_window(
    upstream: Upstream, tmp_path: Path, settings: Settings, make_scenario: MakeScenario
) -> None:
    load = start_load(
        make_scenario("chat.py", duration=60, processes=2), "chat", upstream.url, API_KEY,
        tmp_path, settings, stop_timeout=10,
    )  # fmt: skip
    try:
        _await(lambda: load.status().get("windows_written", 0) >= 3, 30)
        written = load.status()["windows_written"]
        os.kill(load.pid, signal.SIGKILL)
    finally:
        load.kill()  # the orphaned workers too
    lines = load.spool_path.read_bytes().splitlines()
    assert len(lines) >= written
    indexes = [json.loads(line)["index"] for line in lines]
    assert indexes == list(range(len(indexes)))  # every completed window, in order
    counts = Counter(type(r).__name__ for r in read_spool(load.spool_path))
    assert counts["Window"] >= 3


def test_the_load_stops_by_itself_when_its_parent_dies(upstream: Upstream, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from observatory.load.runner import start_load
        from observatory.settings import ScenarioSettings, Settings
        scenario = ScenarioSettings.model_validate(dict(
            file="chat.py", duration=3, warmup=1, window=1,
            profile=dict(model="closed", users=2, spawn_rate=10)))
        load = start_load(scenario, "chat", {upstream.url!r}, "k", Path({str(tmp_path)!r}),
                          Settings(), stop_timeout=5)
        print(load.pid, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    parent = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert parent.returncode == -signal.SIGKILL
    master = psutil.Process(int(parent.stdout.split()[0]))
    try:
        master.wait(timeout=30)  # bounded by the run's duration, not by its parent
    except psutil.TimeoutExpired:
        os.killpg(master.pid, signal.SIGKILL)
        pytest.fail("the orphaned load generator did not stop at its duration")
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["state"] == "stopped"
    assert status["requests"] > 0


def _await(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not met in time")
        time.sleep(0.2)


def test_failures_are_categorised_with_redacted_samples(
    upstream: Upstream, tmp_path: Path, settings: Settings, make_scenario: MakeScenario
) -> None:
    upstream.faults(error_rate=0.3, error_codes=[500, 503], reset_rate=0.1)
    done = _run(make_scenario("chat.py", duration=3), upstream, tmp_path, settings)
    errors = [r for r in done.records if isinstance(r, ErrorSample)]
    categories = {e.category for e in errors}
    assert {"http_500", "http_503", "connection"} <= categories
    failures = sum(w.failures for w in done.windows())
    assert failures == sum(e.count for e in errors) > 0
    assert done.count("latency") == done.served  # resets were served too, then cut
    for error in errors:
        assert 1 <= len(error.messages) <= 3
        assert all(API_KEY not in m for m in error.messages)


class _BrokenGateway(ThreadingHTTPServer):
    """Answers 200 with HTML to JSON calls and a stream that stops before [DONE]."""

    daemon_threads = True

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if body.get("stream"):
                payload = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
                kind = "text/event-stream"
            else:
                payload, kind = b"<html>proxy error</html>", "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), self.Handler)


@pytest.mark.parametrize("file", ["chat.py", "chat_stream.py"])
def test_bad_bodies_are_failures_not_successes(
    tmp_path: Path, settings: Settings, make_scenario: MakeScenario, file: str
) -> None:
    server = _BrokenGateway()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        load = start_load(make_scenario(file, duration=2), "x", url, API_KEY, tmp_path, settings)
        assert load.wait(60) == 0
    finally:
        server.shutdown()
        server.server_close()
    records = list(read_spool(load.spool_path))
    latency = [r for r in records if isinstance(r, Window) and r.series == "latency"]
    assert sum(w.count for w in latency) == sum(w.failures for w in latency) > 0
    errors = [r for r in records if isinstance(r, ErrorSample)]
    assert {e.category for e in errors} == {"bad_body"}
    expected = "not JSON" if file == "chat.py" else "ended without its terminator"
    assert any(expected in m for e in errors for m in e.messages)


def test_a_remote_worker_joins_through_the_same_report_path(
    upstream: Upstream, tmp_path: Path, settings: Settings, make_scenario: MakeScenario
) -> None:
    load = start_load(
        make_scenario("chat.py", duration=8, profile={"model": "closed", "users": 4,
                                                      "spawn_rate": 50}),
        "chat", upstream.url, API_KEY, tmp_path, settings, stop_timeout=10,
    )  # fmt: skip
    meta = json.loads((tmp_path / "load.json").read_text())
    plugin = Path(meta["command"][meta["command"].index("-f") + 1].split(",")[0])
    scenario_file = meta["command"][meta["command"].index("-f") + 1].split(",")[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_LOAD_")}
    env["OBSERVATORY_LOAD_API_KEY"] = API_KEY  # the run's parameters come from the master
    worker = subprocess.Popen(
        [sys.executable, "-m", "locust", "--worker", "--master-host", "127.0.0.1",
         "--master-port", str(meta["master_port"]), "-f", f"{plugin},{scenario_file}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    upstream_port = int(upstream.url.rsplit(":", 1)[1])

    def remote_sends() -> bool:  # rebalanced users: the joined worker talks to the upstream
        connections = psutil.Process(worker.pid).net_connections(kind="tcp")
        return any(c.raddr and c.raddr.port == upstream_port for c in connections)

    try:
        _await(lambda: load.status().get("workers") == 2, 20)
        _await(remote_sends, 20)
        assert load.wait(60) == 0
    finally:
        worker.kill()
        worker.wait(10)
    time.sleep(0.2)
    records = list(read_spool(load.spool_path))
    latency = sum(r.count for r in records if isinstance(r, Window) and r.series == "latency")
    assert latency == _served(upstream) > 0
