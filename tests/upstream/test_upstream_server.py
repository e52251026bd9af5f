"""The subprocess server and the CLI: port 0, URL reporting, clean stop, refusals."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import httpx
import psutil
import pytest

from observatory.errors import BuildError
from observatory.settings import UpstreamSettings
from observatory.upstream.server import UpstreamServer


def test_starts_on_port_zero_and_stops_with_no_process_left() -> None:
    server = UpstreamServer(UpstreamSettings())
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        port = int(server.url.rsplit(":", 1)[1])
        assert port > 0
        process = psutil.Process(server.pid)
        assert process.is_running()
        assert process.children(recursive=True) == []
        assert httpx.get(f"{server.url}/v1/models", timeout=5).status_code == 200
        pid = server.pid
    assert not psutil.pid_exists(pid)
    with pytest.raises(BuildError, match="not running"):
        _ = server.url
    assert_nothing_listens(port)


def assert_nothing_listens(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_taken_port_fails_with_the_childs_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = UpstreamServer(UpstreamSettings(port=port), startup_timeout=20)
        with pytest.raises(BuildError, match=r"exited at start-up.*address already in use"):
            server.start()
    with pytest.raises(BuildError):
        _ = server.pid


def test_two_servers_run_side_by_side_with_their_own_seeds() -> None:
    with (
        UpstreamServer(UpstreamSettings(seed=1)) as one,
        UpstreamServer(UpstreamSettings(seed=2)) as two,
    ):
        assert one.url != two.url
        assert one.pid != two.pid


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "observatory", "upstream", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_refuses_a_non_loopback_host() -> None:
    result = run_cli("--host", "203.0.113.5")
    assert result.returncode == 2
    assert "'203.0.113.5' is neither loopback nor in allowed_targets" in result.stderr


def test_cli_rejects_bad_settings_json_naming_the_field() -> None:
    result = run_cli("--settings-json", '{"stream": {"chunks": 0}}')
    assert result.returncode == 2
    assert "--settings-json: stream.chunks:" in result.stderr


def test_cli_serves_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "observatory", "upstream", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("upstream listening on http://127.0.0.1:")
        url = line.split()[-1]
        assert httpx.get(f"{url}/models", timeout=5).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_child_entry_point_is_loopback_only() -> None:
    settings = UpstreamSettings(host="203.0.113.5").model_dump_json()
    result = subprocess.run(
        [sys.executable, "-m", "observatory.upstream", "--settings-json", settings],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "host '203.0.113.5' is not loopback" in result.stderr
