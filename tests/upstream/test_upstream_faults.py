"""Fault knobs: rates with a seeded generator, reproducibility, error shapes, stall,
reset, added latency; and the admin API that sets them at run time."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from observatory.errors import InputError
from observatory.settings import FaultKnobs
from observatory.upstream import admin
from observatory.upstream.server import UpstreamServer

StartUpstream = Callable[..., UpstreamServer]
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}
NO_DELAY = {"latency": {"distribution": "fixed", "mean": 0}}


def statuses(client: httpx.Client, count: int, path: str = "/v1/chat/completions") -> list[int]:
    return [client.post(path, json=CHAT).status_code for _ in range(count)]


def test_error_rate_within_binomial_bound_and_counted(fast: httpx.Client) -> None:
    url = str(fast.base_url)
    admin.set_faults(url, error_rate=0.1, error_codes=[429, 500, 503])
    codes = Counter(statuses(fast, 1000))
    errors = 1000 - codes[200]
    # 5 standard deviations of Binomial(1000, 0.1): false alarm odds below 1 in a million.
    assert abs(errors - 100) <= 5 * math.sqrt(1000 * 0.1 * 0.9)
    assert set(codes) <= {200, 429, 500, 503}
    assert all(codes[c] > 0 for c in (429, 500, 503))
    stats = admin.get_stats(url)
    assert stats["requests"]["chat_completions"] == 1000
    assert stats["faults"]["error_429"] == codes[429]
    assert stats["faults"]["error_500"] == codes[500]
    assert stats["faults"]["error_503"] == codes[503]
    assert stats["in_flight"] == 0


def test_same_seed_same_faults_and_delays(start_upstream: StartUpstream) -> None:
    settings = {
        "seed": 7,
        "latency": {"distribution": "lognormal", "mean": 0, "stddev": "2ms"},
        "stream": {"ttft": "5ms", "chunks": 1, "chunk_delay": 0},
        "faults": {"error_rate": 0.3, "error_codes": [429, 500, 503]},
    }
    runs = [
        _fault_and_delay_sequence(start_upstream(**settings)),
        _fault_and_delay_sequence(start_upstream(**settings)),
        _fault_and_delay_sequence(start_upstream(**{**settings, "seed": 8})),
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]
    assert 20 < Counter(status for status, _ in runs[0])[200] < 150
    assert len({ttft for status, ttft in runs[0] if status == 200}) > 20  # delays were drawn


def _fault_and_delay_sequence(server: UpstreamServer) -> list[tuple[int, str]]:
    """(status, planned TTFT header) per streamed request."""
    out = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for _ in range(150):
            response = client.post("/v1/chat/completions", json={**CHAT, "stream": True})
            out.append((response.status_code, response.headers.get("x-upstream-ttft-ms", "")))
    return out


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/v1/chat/completions", "openai"), ("/v1/embeddings", "openai"), ("/messages", "anthropic")],
)
def test_error_bodies_and_retry_after(fast: httpx.Client, path: str, shape: str) -> None:
    admin.set_faults(str(fast.base_url), error_rate=1.0, error_codes=[429])
    body = {**CHAT, "input": "x", "max_tokens": 3}
    response = fast.post(path, json=body)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "x-upstream-service-time-ms" in response.headers
    error = response.json()
    if shape == "openai":
        assert error["error"]["code"] == "rate_limit_exceeded"
        assert set(error["error"]) == {"message", "type", "param", "code"}
    else:
        assert error["type"] == "error"
        assert error["error"]["type"] == "rate_limit_error"
    admin.set_faults(str(fast.base_url), error_codes=[503])
    unavailable = fast.post(path, json=body)
    assert unavailable.status_code == 503
    assert "retry-after" not in unavailable.headers


def test_reset_aborts_the_connection_without_a_response(fast: httpx.Client) -> None:
    url = str(fast.base_url)
    admin.set_faults(url, reset_rate=1.0)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        fast.post("/v1/chat/completions", json=CHAT)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        fast.post("/v1/chat/completions", json={**CHAT, "stream": True})
    admin.set_faults(url, reset_rate=0.0)
    assert fast.post("/v1/chat/completions", json=CHAT).status_code == 200
    stats = admin.get_stats(url)
    assert stats["faults"]["reset"] == 2
    assert stats["requests"]["chat_completions"] == 3


def test_reset_rate_counts(fast: httpx.Client) -> None:
    url = str(fast.base_url)
    admin.set_faults(url, reset_rate=0.2)
    failures = 0
    for _ in range(300):
        try:
            fast.post("/v1/embeddings", json={"model": "e", "input": "x"})
        except httpx.TransportError:
            failures += 1
    assert abs(failures - 60) <= 5 * math.sqrt(300 * 0.2 * 0.8)
    assert admin.get_stats(url)["faults"]["reset"] == failures


def test_stall_holds_the_answer_and_shows_in_flight(fast: httpx.Client) -> None:
    url = str(fast.base_url)
    admin.set_faults(url, stall_rate=1.0, stall="600ms")
    result: dict[str, object] = {}

    def call() -> None:
        started = time.monotonic()
        response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=10)
        result["elapsed"] = time.monotonic() - started
        result["response"] = response

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    during = admin.get_stats(url)
    thread.join(timeout=10)
    assert during["in_flight"] == 1
    response = result["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200
    assert result["elapsed"] >= 0.6  # type: ignore[operator]
    assert float(response.headers["x-upstream-service-time-ms"]) >= 600
    stats = admin.get_stats(url)
    assert stats["faults"]["stall"] == 1
    assert stats["in_flight"] == 0


def test_stall_delays_the_stream_headers(fast: httpx.Client) -> None:
    admin.set_faults(str(fast.base_url), stall_rate=1.0, stall="300ms", added_latency="100ms")
    sent = time.monotonic()
    with fast.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}) as r:
        headers_at = time.monotonic()
        assert float(r.headers["x-upstream-ttft-ms"]) == pytest.approx(400)
        assert float(r.headers["x-upstream-service-time-ms"]) == pytest.approx(400)
        r.read()
    assert headers_at - sent >= 0.4


def test_added_latency_and_base_delay(start_upstream: StartUpstream) -> None:
    server = start_upstream(latency={"distribution": "fixed", "mean": "150ms"})
    admin.set_faults(server.url, added_latency="100ms")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for path, body in [("/v1/chat/completions", CHAT), ("/embeddings", {"input": "x"})]:
            started = time.monotonic()
            response = client.post(path, json={**body, "model": "m"})
            elapsed = time.monotonic() - started
            assert response.status_code == 200
            service = float(response.headers["x-upstream-service-time-ms"])
            assert service >= 250
            assert elapsed * 1000 >= service


def test_faults_from_start_settings(start_upstream: StartUpstream) -> None:
    server = start_upstream(**NO_DELAY, faults={"error_rate": 1.0, "error_codes": [500]})
    assert admin.get_faults(server.url).error_rate == 1.0
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert statuses(client, 5) == [500] * 5


def test_admin_put_replaces_post_merges_and_is_not_counted(fast: httpx.Client) -> None:
    url = str(fast.base_url)
    merged = admin.set_faults(url, error_rate=0.5, stall="2s")
    assert (merged.error_rate, merged.stall) == (0.5, 2.0)
    merged = admin.set_faults(url, stall_rate=0.1)
    assert (merged.error_rate, merged.stall_rate) == (0.5, 0.1)
    replaced = fast.put("/admin/faults", json={"reset_rate": 0.25})
    assert replaced.status_code == 200
    assert FaultKnobs.model_validate(replaced.json()) == FaultKnobs(reset_rate=0.25)
    assert admin.get_faults(url) == FaultKnobs(reset_rate=0.25)
    assert admin.replace_faults(url, FaultKnobs()) == FaultKnobs()
    assert fast.get("/admin/health").json() == {"status": "ok"}
    stats = admin.get_stats(url)
    assert stats["requests_total"] == 0
    fast.get("/v1/models")
    assert admin.get_stats(url)["requests"]["models"] == 1
    assert admin.reset_stats(url)["requests_total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_codes": [418]}, "error_codes.0"),
        ({"stall": "soon"}, "stall"),
        ({"added_latency": -1}, "added_latency"),
        ({"reset_rate": "lots"}, "reset_rate"),
        ({"typo_rate": 0.1}, "typo_rate"),
    ],
)
def test_bad_admin_bodies_get_422_naming_the_field(
    fast: httpx.Client, body: dict[str, object], field: str
) -> None:
    before = admin.get_faults(str(fast.base_url))
    response = fast.post("/admin/faults", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert [f["field"] for f in error["fields"]] == [field]
    assert f"{field}: " in error["message"]
    assert admin.get_faults(str(fast.base_url)) == before  # nothing half-applied


def test_admin_rejects_non_objects_and_client_raises_input_error(fast: httpx.Client) -> None:
    assert fast.put("/admin/faults", content=b"[1]").status_code == 422
    assert fast.put("/admin/faults", content=b"not json").status_code == 422
    assert fast.get("/admin/unknown").status_code == 404
    with pytest.raises(InputError, match="error_rate"):
        admin.set_faults(str(fast.base_url), error_rate=2)


def test_admin_client_reports_an_unreachable_upstream() -> None:
    from observatory.errors import LoadError

    with pytest.raises(LoadError, match=r"127\.0\.0\.1:9"):
        admin.get_stats("http://127.0.0.1:9")
