"""Resource sampling of process trees (gateway, load generator, upstream) on a fixed interval.

What one sample of a process tree reports (``domain.ResourceSample``):

- ``rss_mb``: sum of RSS over the tree, MiB. Counts pages shared between workers once per
  worker, so it over-states a multi-worker gateway; kept because every tool reports it.
- ``uss_mb``: sum of USS (unique set size, psutil ``memory_full_info``) over the tree, MiB:
  memory that would be freed if the process exited, so shared pages are never double
  counted. This is the series leak detection should use. ``None`` when any process of the
  tree denies access (a partial sum would look like a drop).
- ``cpu_percent``: CPU time of the whole tree over wall time since the previous sample,
  in percent of one core (200 = two cores busy). From ``cpu_times`` deltas per process,
  not psutil's ``cpu_percent``, so workers that come and go are counted.
- ``threads``, ``fds``: sums; ``connections``: TCP sockets of the tree that are not
  listening; ``processes``: size of the tree.
- ``log_bytes``: bytes the tree wrote to stdout/stderr since the previous sample (a
  supervised gateway only: its output pump counts them; the text is never stored).

For a gateway reached by URL only, :class:`MetricsProbe` reads its Prometheus ``/metrics``
(``process_resident_memory_bytes``, ``process_cpu_seconds_total``, ``process_open_fds``);
whatever it does not expose stays ``None``: numbers are never invented.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol

import httpx
import psutil

from observatory.domain import ResourceSample

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_SAMPLE_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)")


class Probe(Protocol):
    """Something that can be measured now, under one role name."""

    role: str

    def sample(self, at: datetime) -> ResourceSample: ...


class ProcessTreeProbe:
    """A process and all its descendants, found afresh at every sample."""

    def __init__(self, role: str, pid: int, output: Callable[[], int] | None = None) -> None:
        self.role = role
        self.pid = pid
        self._output = output  # bytes written to its output so far (a supervised process)
        self._output_seen = output() if output is not None else 0
        self._cpu: dict[tuple[int, float], float] = {}
        self._cpu_at: float | None = None
        self._prime()

    def sample(self, at: datetime) -> ResourceSample:
        procs = self._tree()
        if not procs:
            return _empty(at, self.role, processes=0)
        rss, uss, threads, fds, conns = 0, 0, 0, 0, 0
        uss_known = True
        for proc in procs:
            try:
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    threads += proc.num_threads()
                    fds += proc.num_fds()
                    conns += _connections(proc)
                    unique = _uss(proc)
            except psutil.NoSuchProcess:
                continue  # exited between listing and reading: it holds nothing any more
            uss_known = uss_known and unique is not None
            uss += unique or 0
        return ResourceSample(
            at=at,
            role=self.role,
            rss_mb=rss / MIB,
            uss_mb=uss / MIB if uss_known else None,
            cpu_percent=self._cpu_percent(procs),
            threads=threads,
            fds=fds,
            connections=conns,
            processes=len(procs),
            log_bytes=self._log_bytes(),
        )

    def _log_bytes(self) -> int | None:
        if self._output is None:
            return None
        total = self._output()
        written, self._output_seen = total - self._output_seen, total
        return written

    def _tree(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            if root.status() == psutil.STATUS_ZOMBIE:
                return []
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _prime(self) -> None:
        self._cpu_percent(self._tree())

    def _cpu_percent(self, procs: list[psutil.Process]) -> float | None:
        now = time.monotonic()
        totals: dict[tuple[int, float], float] = {}
        for proc in procs:
            try:
                times = proc.cpu_times()
                totals[(proc.pid, proc.create_time())] = times.user + times.system
            except psutil.Error:
                continue
        previous, previous_at = self._cpu, self._cpu_at
        self._cpu, self._cpu_at = totals, now
        if previous_at is None or now <= previous_at:
            return None
        since = time.time() - (now - previous_at)
        used = sum(
            total - previous.get(key, 0.0)
            for key, total in totals.items()
            if key in previous or key[1] >= since  # a process born since the last sample
        )
        return max(0.0, used) / (now - previous_at) * 100.0


def _connections(proc: psutil.Process) -> int:
    try:
        return sum(1 for c in proc.net_connections(kind="tcp") if c.status != psutil.CONN_LISTEN)
    except psutil.AccessDenied:
        return 0


def _uss(proc: psutil.Process) -> int | None:
    try:
        return int(proc.memory_full_info().uss)
    except psutil.AccessDenied:
        return None


class MetricsProbe:
    """A gateway's own Prometheus ``/metrics``; missing metrics stay ``None``."""

    NAMES = ("process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds")

    def __init__(self, role: str, url: str, *, api_key: str | None = None, timeout: float = 3.0):
        self.role = role
        self.url = url
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = timeout
        self._cpu: tuple[float, float] | None = None  # (monotonic time, cpu seconds)

    def sample(self, at: datetime) -> ResourceSample:
        values = self._scrape()
        if values is None:
            return _empty(at, self.role)
        rss = values.get("process_resident_memory_bytes")
        fds = values.get("process_open_fds")
        return ResourceSample(
            at=at,
            role=self.role,
            rss_mb=rss / MIB if rss is not None else None,
            uss_mb=None,
            cpu_percent=self._cpu_percent(values.get("process_cpu_seconds_total")),
            threads=None,
            fds=int(fds) if fds is not None else None,
            connections=None,
            processes=None,
        )

    def _scrape(self) -> dict[str, float] | None:
        try:
            response = httpx.get(self.url, headers=self._headers, timeout=self._timeout)
        except httpx.HTTPError as exc:
            log.debug("metrics of %s unavailable: %s", self.url, exc)
            return None
        if response.status_code != 200:
            return None
        return parse_metrics(response.text, self.NAMES)

    def _cpu_percent(self, cpu_seconds: float | None) -> float | None:
        if cpu_seconds is None:
            return None
        now = time.monotonic()
        previous, self._cpu = self._cpu, (now, cpu_seconds)
        if previous is None or now <= previous[0] or cpu_seconds < previous[1]:
            return None  # first sample, or the gateway restarted: no honest delta
        return (cpu_seconds - previous[1]) / (now - previous[0]) * 100.0


def parse_metrics(text: str, names: tuple[str, ...]) -> dict[str, float]:
    """Sum the samples of each wanted metric (one per worker in multi-process exporters)."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE_LINE.match(line)
        if match is None or match.group(1) not in names:
            continue
        try:
            value = float(match.group(2))
        except ValueError:
            continue
        found[match.group(1)] = found.get(match.group(1), 0.0) + value
    return found


def _empty(at: datetime, role: str, processes: int | None = None) -> ResourceSample:
    return ResourceSample(
        at=at,
        role=role,
        rss_mb=None,
        uss_mb=None,
        cpu_percent=None,
        threads=None,
        fds=None,
        connections=None,
        processes=processes,
    )


class ResourceSampler:
    """A thread that samples every probe each ``interval`` seconds and emits the samples.

    Probes can be added while it runs (the load generator's pid is known only once Locust
    has started). ``emit`` runs on the sampler thread; an exception in it is logged and
    sampling goes on, so a slow database never silently stops the series.
    """

    def __init__(self, emit: Callable[[ResourceSample], None], interval: float = 5.0) -> None:
        if interval <= 0:
            raise ValueError(f"sample interval must be positive, got {interval}")
        self.interval = interval
        self._emit = emit
        self._probes: list[Probe] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, probe: Probe) -> None:
        with self._lock:
            self._probes.append(probe)

    def watch_process(self, role: str, pid: int) -> None:
        self.add(ProcessTreeProbe(role, pid))

    def sample_once(self) -> list[ResourceSample]:
        """Sample every probe now (one timestamp for all) and emit the samples."""
        at = datetime.now(UTC)
        with self._lock:
            probes = list(self._probes)
        samples = []
        for probe in probes:
            try:
                sample = probe.sample(at)
            except Exception:
                log.exception("sampling %s failed", probe.role)
                continue
            samples.append(sample)
            try:
                self._emit(sample)
            except Exception:
                log.exception("storing a %s resource sample failed", probe.role)
        return samples

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="resource-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 30)
            self._thread = None

    def _run(self) -> None:
        # Deadlines on the monotonic clock: samples stay on the grid however long one takes.
        next_at = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            self.sample_once()
            next_at += self.interval
            if next_at < time.monotonic():  # a sample overran; skip the missed slots
                next_at = time.monotonic() + self.interval

    def __enter__(self) -> ResourceSampler:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
