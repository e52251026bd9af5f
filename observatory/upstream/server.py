"""Run the mock upstream: ``serve`` blocks (the CLI), ``UpstreamServer`` runs it in a
subprocess so its CPU is measured per process, apart from the gateway and the tests.

The child (``python -m observatory.upstream``, which skips the CLI's heavier imports
and so starts in a fraction of a second) binds the requested port (0 = any free
one) and prints one line ``upstream listening on http://HOST:PORT`` on stdout once
it accepts connections; the parent reads the URL from it. Everything else the child
says goes to stderr.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import IO

import uvicorn
from pydantic import ValidationError

from observatory.errors import BuildError, InputError
from observatory.markers import marked
from observatory.settings import UpstreamSettings
from observatory.upstream.app import create_app

ANNOUNCE = "upstream listening on "
_URL = re.compile(re.escape(ANNOUNCE) + r"(http://\S+)")


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that reports its bound address once it listens."""

    def __init__(self, config: uvicorn.Config, announce: Callable[[str], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            port = self.servers[0].sockets[0].getsockname()[1]
            self._announce(url_for(self.config.host, port))

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM stop the server gracefully and the process exits 0: for the
        mock, a stop signal is the normal end (uvicorn would re-raise it afterwards)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        stops = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in stops}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(settings: UpstreamSettings, announce: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; ``announce`` gets the URL (default: print it)."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        # A stalled request must not hold up shutdown for the whole stall.
        timeout_graceful_shutdown=2,
    )
    _AnnouncingServer(config, announce or _print_url).run()


def settings_from_json(text: str) -> UpstreamSettings:
    """Parse ``--settings-json``; InputError names each bad field."""
    try:
        return UpstreamSettings.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        raise InputError(f"--settings-json: {problems}") from None


def _problem(loc: tuple[int | str, ...], message: str) -> str:
    field = ".".join(str(part) for part in loc) or "settings"
    return f"{field}: {message.removeprefix('Value error, ')}"


def _print_url(url: str) -> None:
    print(ANNOUNCE + url, flush=True)


class UpstreamServer:
    """The mock upstream in a child process: ``with UpstreamServer(s) as up: up.url``."""

    def __init__(self, settings: UpstreamSettings, *, startup_timeout: float = 30.0) -> None:
        self.settings = settings
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        if self._url is None:
            raise BuildError("the mock upstream is not running; call start() first")
        return self._url

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BuildError("the mock upstream is not running; call start() first")
        return self._process.pid

    def start(self) -> None:
        if self._process is not None:
            raise BuildError(f"the mock upstream is already running at {self._url}")
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        command = [
            sys.executable, "-m", "observatory.upstream",
            "--settings-json", self.settings.model_dump_json(),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=dict(marked(dict(os.environ))),
        )
        try:
            self._url = self._await_url(self._process)
        except BaseException:
            self.stop()
            raise

    def _await_url(self, process: subprocess.Popen[str]) -> str:
        assert process.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(timeout=remaining):
                    break
                line = process.stdout.readline()
                if not line:
                    raise BuildError(f"the mock upstream exited at start-up: {self._tail()}")
                if match := _URL.search(line):
                    return match.group(1)
        raise BuildError(
            f"the mock upstream did not report its URL within {self.startup_timeout:g}s: "
            f"{self._tail()}"
        )

    def _tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = self._stderr.read().strip().splitlines()
        return " | ".join(lines[-5:]) or "(no output)"

    def stop(self) -> None:
        """SIGTERM, a grace period for uvicorn's shutdown, then SIGKILL."""
        process, self._process, self._url = self._process, None, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if self._stderr is not None:
            with contextlib.suppress(OSError):
                self._stderr.close()
            self._stderr = None

    def __enter__(self) -> UpstreamServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
