"""URL builds: a gateway someone else runs; reachability, allowed targets, /metrics."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from builds_helpers import FAKE_GATEWAY

from observatory.builds.provision import free_port, start_gateway
from observatory.builds.sampler import MetricsProbe
from observatory.domain import ProvisionKind
from observatory.errors import BuildError, ForbiddenTargetError
from observatory.settings import Settings

Make = Callable[..., Settings]


@pytest.fixture
def running_gateway(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The fake gateway run by the test itself (not by the observatory)."""
    config = tmp_path / "c.yaml"
    config.write_text("{}\n")
    port = free_port()
    flags = list(getattr(request, "param", []))
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_GATEWAY), "--host", "127.0.0.1", "--port", str(port),
         "--config", str(config), *flags],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/health/liveliness", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def _attach(settings: Settings, tmp_path: Path):  # type: ignore[no-untyped-def]
    build = settings.build("b")
    return start_gateway(build, settings.gateways["fake"], settings, "http://unused", tmp_path)


def test_unreachable_url_names_the_url(make_settings: Make, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(BuildError, match=rf"gateway at {url} is unreachable: ConnectError"):
        _attach(make_settings(url=url), tmp_path)


@pytest.mark.parametrize("url", ["http://10.1.2.3:4000", "https://gateway.example.com"])
def test_non_allowed_target_is_refused_before_any_request(
    make_settings: Make, tmp_path: Path, url: str
) -> None:
    with pytest.raises(ForbiddenTargetError, match=r"neither loopback nor in allowed_targets"):
        _attach(make_settings(url=url), tmp_path)


def test_a_healthless_gateway_is_reported(make_settings: Make, tmp_path: Path) -> None:
    class NotFound(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(BuildError, match=r"answers but is not healthy: no 2xx from"):
            _attach(make_settings(url=url), tmp_path)
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("running_gateway", [["--metrics"]], indirect=True)
def test_metrics_are_scraped_when_present(
    make_settings: Make, tmp_path: Path, running_gateway: str
) -> None:
    settings = make_settings(url=running_gateway + "/", version="9.9.9")
    with _attach(settings, tmp_path) as gateway:
        assert gateway.kind is ProvisionKind.URL
        assert gateway.pid is None
        assert gateway.crash() is None
        assert gateway.base_url == running_gateway
        assert gateway.version == "9.9.9"
        assert gateway.fingerprint()["url"] == running_gateway
        probe = gateway.resource_probe()
        assert isinstance(probe, MetricsProbe)
        first = probe.sample(datetime.now(UTC))
        time.sleep(0.2)
        second = probe.sample(datetime.now(UTC))
    assert first.rss_mb == 100.0
    assert first.fds == 17
    assert first.cpu_percent is None  # no earlier reading to take a delta from
    assert second.cpu_percent is not None
    assert second.cpu_percent >= 0
    assert (second.uss_mb, second.threads, second.connections, second.processes) == (None,) * 4


def test_without_metrics_every_field_is_unavailable(
    make_settings: Make, tmp_path: Path, running_gateway: str
) -> None:
    with _attach(make_settings(url=running_gateway), tmp_path) as gateway:
        sample = gateway.resource_probe().sample(datetime.now(UTC))
    assert sample.role == "gateway"
    values = (sample.rss_mb, sample.uss_mb, sample.cpu_percent, sample.threads, sample.fds)
    assert values == (None,) * 5


def test_url_credentials_stay_out_of_errors(make_settings: Make, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(BuildError) as unreachable:
        _attach(make_settings(url=f"http://ops:S3CRET@127.0.0.1:{port}"), tmp_path)
    assert f"http://<redacted>@127.0.0.1:{port}" in str(unreachable.value)
    assert "S3CRET" not in str(unreachable.value)
    with pytest.raises(ForbiddenTargetError) as forbidden:
        _attach(make_settings(url="http://ops:S3CRET@10.1.2.3:4000"), tmp_path)
    assert "S3CRET" not in str(forbidden.value)
