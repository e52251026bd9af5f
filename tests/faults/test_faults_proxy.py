"""The TCP fault proxy in front of a real redis-server: each mode measured from a client."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from observatory.errors import ForbiddenTargetError, InputError, LoadError
from observatory.faults.proxy import FaultProxy, Mode, delta
from observatory.faults.redis_server import RunRedis
from observatory.faults.resp import RespConnection, encode, ping

DELAY = 0.3
DROPPED = (ConnectionResetError, BrokenPipeError)  # a reset connection, seen by a client


def timed(redis: RespConnection, *command: str) -> tuple[object, float]:
    began = time.perf_counter()
    reply = redis.call(*command)
    return reply, time.perf_counter() - began


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def test_pass_through_is_transparent(redis: RunRedis) -> None:
    with RespConnection(redis.host, redis.port) as client:
        assert client.call("SET", "k", "v" * 100_000) == b"OK"
        assert client.call("GET", "k") == b"v" * 100_000
        _, took = timed(client, "PING")
    assert took < 0.1
    assert redis.proxy.mode is Mode.PASS
    assert redis.proxy.snapshot()["accepted"] == 1


def test_slow_holds_every_command_in_both_directions_then_heals(redis: RunRedis) -> None:
    proxy = redis.proxy
    with RespConnection(redis.host, redis.port) as client:
        client.call("SET", "k", "v")
        before = proxy.snapshot()
        proxy.slow(DELAY)
        slow = [timed(client, "GET", "k") for _ in range(3)]
        during = proxy.snapshot()
        proxy.heal()
        after = [timed(client, "GET", "k") for _ in range(3)]
    assert all(reply == b"v" for reply, _ in slow + after)  # Redis still answers
    assert all(took >= 2 * DELAY for _, took in slow), slow  # request and reply both held
    assert all(took < DELAY / 2 for _, took in after), after
    seen = delta(before, during)
    assert seen["delayed_chunks"] == 6  # three commands, three replies
    assert DELAY <= seen["held_s_max"] < DELAY + 0.5  # more only on a busy host
    assert seen["held_s_total"] >= 6 * DELAY * 0.95
    assert delta(during, proxy.snapshot())["delayed_chunks"] == 0


def test_slow_is_latency_not_bandwidth(redis: RunRedis) -> None:
    """Twenty pipelined commands take one round trip of delay, not twenty."""
    redis.proxy.slow(DELAY)
    with socket.create_connection((redis.host, redis.port), timeout=10) as sock:
        began = time.perf_counter()
        for i in range(20):
            sock.sendall(encode("ECHO", str(i)))
            time.sleep(0.005)
        received = b""
        while received.count(b"\r\n") < 40:
            received += sock.recv(65536)
        took = time.perf_counter() - began
    assert 2 * DELAY <= took < 2 * DELAY + 0.5
    assert [int(x) for x in received.split(b"\r\n")[1::2][:20]] == list(range(20))  # in order


def test_refuse_resets_open_connections_and_refuses_new_ones(redis: RunRedis) -> None:
    proxy = redis.proxy
    client = RespConnection(redis.host, redis.port)
    assert client.call("PING") == b"PONG"
    before = proxy.snapshot()
    proxy.refuse()
    with pytest.raises(DROPPED):
        client.call("PING")
    with pytest.raises(ConnectionRefusedError):
        RespConnection(redis.host, redis.port, timeout=2)
    during = proxy.snapshot()
    proxy.heal()
    assert ping(redis.host, redis.port)
    seen = delta(before, during)
    assert seen["reset"] == 1
    assert seen["accepted"] == 0  # nothing got through while refusing
    client.close()


def test_blackhole_swallows_commands_until_healed(redis: RunRedis) -> None:
    proxy = redis.proxy
    held = socket.create_connection((redis.host, redis.port), timeout=0.5)
    held.sendall(encode("PING"))
    assert held.recv(100) == b"+PONG\r\n"
    before = proxy.snapshot()
    proxy.blackhole()
    fresh = socket.create_connection((redis.host, redis.port), timeout=0.5)  # handshake works
    for sock in (held, fresh):
        sock.sendall(encode("PING"))
        with pytest.raises(TimeoutError):
            sock.recv(100)  # the command never arrives, no reply ever comes
    during = proxy.snapshot()
    proxy.heal()
    for sock in (held, fresh):
        assert closed_by_peer(sock)  # reset on heal: its stream is out of step
        sock.close()
    assert ping(redis.host, redis.port)
    seen = delta(before, during)
    assert seen["blackholed"] == 2
    assert seen["discarded_bytes"] == 2 * len(encode("PING"))
    assert delta(during, proxy.snapshot())["reset"] == 2


def test_target_down_is_counted_not_hidden(redis: RunRedis) -> None:
    redis.server.stop()
    assert not ping(redis.host, redis.port, timeout=1.0)
    assert redis.proxy.snapshot()["upstream_failures"] == 1


def test_only_loopback_and_positive_delays() -> None:
    with pytest.raises(ForbiddenTargetError, match="loopback"):
        FaultProxy(("10.1.2.3", 6379))
    with FaultProxy(("127.0.0.1", 9)) as proxy, pytest.raises(InputError, match="delay"):
        proxy.slow(0)


def test_stop_closes_everything_and_leaves_no_thread(redis: RunRedis) -> None:
    client = RespConnection(redis.host, redis.port, timeout=2)
    client.call("PING")
    redis.proxy.slow(5.0)
    redis.proxy.stop()
    with pytest.raises(DROPPED):
        client.call("PING")
    with pytest.raises(ConnectionRefusedError):
        RespConnection(redis.host, redis.port, timeout=1)
    assert not [t for t in threading.enumerate() if t.name.startswith("fault-proxy")]
    redis.proxy.stop()  # twice is fine
    client.close()


def test_a_port_in_use_is_a_clear_error_and_leaves_no_thread(redis: RunRedis) -> None:
    with pytest.raises(LoadError, match=r"fault proxy on 127\.0\.0\.1"):
        FaultProxy(redis.server.address, port=redis.port).start()  # the first proxy's port
    assert len([t for t in threading.enumerate() if t.name.startswith("fault-proxy")]) == 1
