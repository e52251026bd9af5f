"""Chaos, measured: break a real `observatory serve` on Postgres and count what was lost.

Each scenario runs short validations of a toy gateway against a real service (its own
process, on a scratch Postgres database this script creates and drops), with a Slack
stand-in on loopback, breaks something mid-run, waits (bounded) for every run to end, and
counts:

- windows: expected (every window the load generator spooled) vs stored in the database;
- alerts: expected (one per run a worker began) vs delivered (acknowledged by the Slack
  stand-in), and duplicates (a run's alert acknowledged more than once);
- stuck runs (not ended when the scenario's time is up) and ended runs without a reason.

Scenarios: kill9 (kill -9 of the service mid-run, then a restart), db_outage (the
scratch database drops every connection and refuses new ones for a few seconds), slack
(429, then 500, then a timeout before Slack acknowledges), gateway (the gateway killed
mid-run), two (two services on one database), cancel (cancels racing the claim),
pg_restart (the Postgres cluster restarted mid-run; only with --pg-restart, as it disturbs
every other user of that server). Target: 0 lost, 0 duplicated, 0 stuck, every run ended
with a reason.

    python benchmarks/chaos.py [SCENARIO ...] [--pg-restart]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psutil
import psycopg
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.exc import OperationalError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from observatory.domain import RunStatus, Window  # noqa: E402
from observatory.load.spool import SPOOL_NAME, read_spool  # noqa: E402
from observatory.store.tables import Run, WindowRow  # noqa: E402
from tests.notify.slack_fake import FakeSlack, http, slow  # noqa: E402

PG_ADMIN = os.environ.get("OBSERVATORY_CHAOS_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TOY = ROOT / "tests" / "fixtures" / "toy_gateway.py"
TOKEN = "chaos-" + uuid.uuid4().hex
SCENARIO_S = 150.0  # the most one scenario may take before its runs count as stuck
LOGS = Path(tempfile.gettempdir()) / "observatory-chaos-logs"
OUTAGE_S = 4.0  # how long db_outage keeps the database away

CONFIG = f"""
data_dir: DATA
gateways:
  toy: {{kind: openai, package: toy-gateway, readiness_timeout: 30s}}
builds:
  steady:
    gateway: toy
    version: "1.0"
    command: "{sys.executable} {TOY} --host {{host}} --port {{port}} --config {{config}}"
upstream: {{seed: 7, latency: {{distribution: fixed, mean: 5ms}}}}
scenarios:
  chat:
    file: chat.py
    profile: {{model: closed, users: 2, spawn_rate: 2, wait_min: 20ms, wait_max: 20ms}}
    duration: 15s
    warmup: 2s
    window: 1s
abort: {{error_rate: 0.5, sustained: 3s}}
thresholds: {{neighbour_cpu: null}}
service: {{lease: 8s, public_base_url: "http://observatory.chaos"}}
slack:
  webhook_url: "HOOK"
  timeout: 1s
  retry_initial: 1s
  retry_max: 3s
  notify_on: [regression, crash, abort, inconclusive, pass, error]
"""


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"})

    def executions(self) -> list[int]:
        text = self.log.read_text(errors="replace")
        found = re.findall(r"executes run\(s\) \(([\d, ]+)\)", text)
        return [int(n) for group in found for n in group.split(",") if n.strip()]


@dataclass
class Chaos:
    db_url: str
    engine: Engine
    workdir: Path
    slack: FakeSlack
    services: list[Service] = field(default_factory=list)

    @property
    def config(self) -> Path:
        return self.workdir / "observatory.yaml"

    def start(self, name: str) -> Service:
        log = self.workdir / f"{name}-{len(self.services)}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("OBSERVATORY_")}
        env |= {"OBSERVATORY_DATABASE_URL": self.db_url, "OBSERVATORY_SERVICE__API_TOKEN": TOKEN}
        argv = [sys.executable, "-m", "observatory", "--config", str(self.config)]
        with log.open("wb") as out:
            proc = subprocess.Popen([*argv, "serve", "--port", "0"], cwd=self.workdir, env=env,
                                    stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        service = Service(name, proc, log)
        self.services.append(service)
        wait_for(lambda: _listening(service), 60, f"{name} did not start")
        return service

    def stop_all(self) -> None:
        for service in self.services:
            if service.proc.poll() is None:
                service.proc.send_signal(signal.SIGTERM)
        for service in self.services:
            try:
                service.proc.wait(60)
            except subprocess.TimeoutExpired:
                service.proc.kill()
                service.proc.wait(10)
        _kill_marked(self.workdir)

    def queue(self, service: Service, tag: str) -> int:
        body = {"build": "steady", "scenarios": ["chat"], "baseline": "none", "tag": tag}
        with service.client() as client:
            answer = client.post("/api/v1/validations", json=body, timeout=30)
        answer.raise_for_status()
        run_id: int = answer.json()["run_ids"][0]
        return run_id

    def runs(self, ids: list[int]) -> list[Run]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Run).where(Run.id.in_(ids)).order_by(Run.id))
            return list(rows)  # type: ignore[arg-type]

    def stored_windows(self, run_id: int) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(WindowRow).where(WindowRow.run_id == run_id)
            return int(conn.scalar(query) or 0)

    def expected_windows(self, run_id: int) -> set[tuple[str, str, datetime]]:
        """Every (series, name, start) the load generator spooled."""
        spool = self.workdir / "data" / "runs" / str(run_id) / SPOOL_NAME
        if not spool.is_file():
            return set()
        return {(w.series, w.name, w.start) for w in read_spool(spool) if isinstance(w, Window)}

    def windows_missing(self, run_id: int) -> list[str]:
        with self.engine.connect() as conn:
            query = select(WindowRow.series, WindowRow.name, WindowRow.start)
            stored = set(conn.execute(query.where(WindowRow.run_id == run_id)).all())
        missing = sorted(self.expected_windows(run_id) - {tuple(row) for row in stored})
        return [f"{s}/{n}@{t:%H:%M:%S}" for s, n, t in missing]

    def status(self, run_id: int) -> str:
        return str(self.runs([run_id])[0].status)

    def ended(self, ids: list[int]) -> bool:
        return all(RunStatus(r.status).finished for r in self.runs(ids))

    def running_with_windows(self, run_id: int, windows: int = 3) -> bool:
        return self.status(run_id) == "running" and self.stored_windows(run_id) >= windows


def _listening(service: Service) -> bool:
    if service.proc.poll() is not None:
        raise RuntimeError(f"{service.name} exited: {service.log.read_text()[-2000:]}")
    match = re.search(r"listening on (http://\S+)", service.log.read_text(errors="replace"))
    if match:
        service.url = match.group(1)
    return bool(match)


def wait_for(check: Callable[[], bool], timeout: float, what: str = "") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OperationalError):  # the database is away (db_outage)
            if check():
                return True
        time.sleep(0.3)
    if what:
        print(f"  timed out: {what}", flush=True)
    return False


def _kill_marked(workdir: Path) -> None:
    """Leftover gateway / Locust processes of this scenario (none when all went well)."""
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, OSError):
            marked = "OBSERVATORY_RUN_ID" in process.environ()
            if marked and str(workdir) in " ".join(process.cmdline()) + process.cwd():
                print(f"  leftover process {process.pid} killed", flush=True)
                process.kill()


# --- scenarios: each returns the ids of the runs it involved --------------------------------


def kill9(chaos: Chaos) -> list[int]:
    service = chaos.start("kill9")
    run_id = chaos.queue(service, "kill9")
    wait_for(lambda: chaos.running_with_windows(run_id), 90, "run did not start")
    service.proc.kill()  # kill -9: no clean-up at all
    service.proc.wait(10)
    chaos.start("kill9-restarted")
    return [run_id]


def pg_restart(chaos: Chaos) -> list[int]:
    service = chaos.start("pg")
    run_id = chaos.queue(service, "pg")
    wait_for(lambda: chaos.running_with_windows(run_id), 90, "run did not start")
    cluster = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"],
                   check=True, timeout=60)  # fmt: skip
    return [run_id]


def db_outage(chaos: Chaos) -> list[int]:
    """The scratch database refuses connections and drops every session for a few seconds
    (what a restart does to its clients), without disturbing the server's other users."""
    service = chaos.start("db")
    run_id = chaos.queue(service, "db")
    wait_for(lambda: chaos.running_with_windows(run_id), 90, "run did not start")
    name = chaos.db_url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                     (name,))  # fmt: skip
        time.sleep(OUTAGE_S)
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    return [run_id]


def slack(chaos: Chaos) -> list[int]:
    service = chaos.start("slack")
    run_id = chaos.queue(service, "slack")
    chaos.slack.script[run_id] = [http(429, "rate_limited", **{"Retry-After": "1"}), http(500),
                                  slow(2.5)]  # fmt: skip
    return [run_id]


def gateway(chaos: Chaos) -> list[int]:
    service = chaos.start("gateway")
    run_id = chaos.queue(service, "gateway")
    wait_for(lambda: chaos.running_with_windows(run_id), 90, "run did not start")
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            marked = process.environ().get("OBSERVATORY_RUN_ID") == str(run_id)
            if marked and str(TOY) in " ".join(process.cmdline()):
                process.kill()
    return [run_id]


def two(chaos: Chaos) -> list[int]:
    first, second = chaos.start("two-a"), chaos.start("two-b")
    return [chaos.queue(service, f"two-{i}") for i, service in enumerate([first, second] * 2)]


def cancel(chaos: Chaos) -> list[int]:
    """Cancels around the claim: with the slot free (the claim follows the queueing at
    once), then three runs queued back to back and cancelled newest first (one claimed)."""
    service = chaos.start("cancel")
    ids: list[int] = []
    for delay in (0.0, 0.05, 0.2):
        ids.append(chaos.queue(service, f"cancel-{delay}"))
        time.sleep(delay)
        _cancel(service, ids[-1])
        wait_for(lambda: chaos.ended(ids), 60, f"run {ids[-1]} did not end after its cancel")
    burst = [chaos.queue(service, f"cancel-burst-{i}") for i in range(3)]
    for run_id in reversed(burst):
        _cancel(service, run_id)
    return ids + burst


def _cancel(service: Service, run_id: int) -> None:
    with service.client() as client:
        client.post(f"/api/v1/runs/{run_id}/cancel", timeout=30).raise_for_status()


SCENARIOS: dict[str, Callable[[Chaos], list[int]]] = {
    "kill9": kill9,
    "db_outage": db_outage,
    "slack": slack,
    "gateway": gateway,
    "two": two,
    "cancel": cancel,
    "pg_restart": pg_restart,
}


# --- measuring -------------------------------------------------------------------------------


@dataclass
class Tally:
    scenario: str
    runs: int = 0
    windows_expected: int = 0
    windows_stored: int = 0
    alerts_expected: int = 0
    alerts_delivered: int = 0
    posts: int = 0  # every POST Slack received, acknowledged in time or not
    duplicates: int = 0
    stuck: int = 0
    no_reason: int = 0
    executed_twice: int = 0
    seconds: float = 0.0
    ends: list[str] = field(default_factory=list)

    @property
    def lost(self) -> int:
        windows = max(0, self.windows_expected - self.windows_stored)
        return windows + max(0, self.alerts_expected - self.alerts_delivered)


def measure(chaos: Chaos, name: str, ids: list[int], started: float) -> Tally:
    deadline = started + SCENARIO_S
    wait_for(lambda: chaos.ended(ids), max(1.0, deadline - time.monotonic()))
    began = [r.id for r in chaos.runs(ids) if r.heartbeat_at is not None]
    wait_for(
        lambda: all(chaos.slack.acked(i) for i in began), max(1.0, deadline - time.monotonic())
    )
    time.sleep(2.0)  # room for a duplicate to arrive
    tally = Tally(name, runs=len(ids), alerts_expected=len(began))
    for run in chaos.runs(ids):
        tally.windows_expected += len(chaos.expected_windows(run.id))
        tally.windows_stored += chaos.stored_windows(run.id)
        missing = chaos.windows_missing(run.id)
        if missing:
            tally.ends.append(f"run {run.id} windows not stored: {', '.join(missing[:12])}")
        acked = chaos.slack.acked(run.id)
        tally.alerts_delivered += min(acked, 1)
        tally.duplicates += max(0, acked - 1)
        tally.posts += len(chaos.slack.received_for(run.id))
        tally.stuck += not RunStatus(run.status).finished
        tally.no_reason += RunStatus(run.status).finished and not run.end_reason
        tally.ends.append(f"run {run.id} {run.status}: {run.end_reason}")
    executions = [i for s in chaos.services for i in s.executions()]
    tally.executed_twice = sum(1 for i in set(executions) if executions.count(i) > 1)
    tally.seconds = time.monotonic() - started
    return tally


@contextlib.contextmanager
def scratch_database() -> Iterator[str]:
    name = f"observatory_chaos_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        wait_for(lambda: _pg_up(), 60)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _pg_up() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def run_scenario(name: str, db_url: str, slack_fake: FakeSlack) -> Tally:
    with tempfile.TemporaryDirectory(prefix=f"chaos-{name}-") as tmp:
        workdir = Path(tmp)
        text = CONFIG.replace("DATA", str(workdir / "data")).replace("HOOK", slack_fake.webhook_url)
        (workdir / "observatory.yaml").write_text(text)
        engine = create_engine(db_url, pool_pre_ping=True)
        chaos = Chaos(db_url, engine, workdir, slack_fake)
        started = time.monotonic()
        try:
            ids = SCENARIOS[name](chaos)
            return measure(chaos, name, ids, started)
        finally:
            chaos.stop_all()
            engine.dispose()
            _keep_logs(workdir, name)


def _keep_logs(workdir: Path, name: str) -> None:
    """The services' logs outlive the scenario's directory: LOGS/<scenario>/."""
    kept = LOGS / name
    kept.mkdir(parents=True, exist_ok=True)
    for log in workdir.glob("*.log"):
        shutil.copy(log, kept / log.name)


def print_table(tallies: list[Tally]) -> None:
    print("\n| scenario | runs | windows expected / stored | alerts expected / delivered "
          "| Slack posts | duplicates | executed twice | stuck | no reason | s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for t in tallies:
        print(f"| {t.scenario} | {t.runs} | {t.windows_expected} / {t.windows_stored} | "
              f"{t.alerts_expected} / {t.alerts_delivered} | {t.posts} | {t.duplicates} | "
              f"{t.executed_twice} | {t.stuck} | {t.no_reason} | {t.seconds:.0f} |")  # fmt: skip
    for t in tallies:
        for end in t.ends:
            print(f"  {t.scenario}: {end}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"subset of: {', '.join(SCENARIOS)}")
    parser.add_argument("--pg-restart", action="store_true",
                        help="also restart Postgres mid-run (disturbs other users)")  # fmt: skip
    args = parser.parse_args()
    names = args.names or [n for n in SCENARIOS if n != "pg_restart" or args.pg_restart]
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if "pg_restart" in names and not args.pg_restart:
        parser.error("pg_restart restarts the Postgres cluster: pass --pg-restart to confirm")
    slack_fake = FakeSlack()
    serving = threading.Thread(target=slack_fake.server.serve_forever, daemon=True)
    serving.start()
    tallies = []
    with scratch_database() as db_url:
        for name in names:
            print(f"=== {name}", flush=True)
            tallies.append(run_scenario(name, db_url, slack_fake))
    slack_fake.server.shutdown()
    print_table(tallies)
    bad = [t.scenario for t in tallies if t.lost or t.duplicates or t.stuck or t.no_reason
           or t.executed_twice]  # fmt: skip
    print(f"\ntarget 0 lost / 0 duplicated / 0 stuck / every run with a reason: "
          f"{'met' if not bad else 'missed in ' + ', '.join(bad)}")  # fmt: skip
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
