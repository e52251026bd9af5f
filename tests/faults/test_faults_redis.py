"""The run's private Redis: started on a free port, nothing persisted, stopped; gateway config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from observatory.builds.litellm import proxy_config
from observatory.builds.provision import start_gateway
from observatory.errors import ConfigError
from observatory.faults.redis_gateway import with_redis
from observatory.faults.redis_server import RedisServer, RunRedis, needs_redis, run_redis
from observatory.faults.resp import RespConnection, ping
from observatory.settings import BuildSettings, GatewaySettings, ScenarioSettings
from tests.faults.conftest import fault_settings

SHARED_REDIS_PORT = 6379


def scenario(**overrides: Any) -> ScenarioSettings:
    values: dict[str, Any] = {"file": "chat.py", "profile": {"users": 1}, "duration": 60}
    values["warmup"] = 10
    return ScenarioSettings.model_validate({**values, **overrides})


def test_private_server_persists_nothing_and_stops(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)
    with server:
        assert server.port not in (0, SHARED_REDIS_PORT)
        pid = server.pid
        assert pid is not None
        with RespConnection(*server.address) as client:
            assert client.call("SET", "key", "value") == b"OK"
            assert client.call("CONFIG", "GET", "save") == [b"save", b""]
            assert client.call("CONFIG", "GET", "appendonly") == [b"appendonly", b"no"]
            assert client.call("CONFIG", "GET", "bind") == [b"bind", b"127.0.0.1"]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not ping(*server.address, timeout=0.5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redis.log"]  # no dump, no AOF
    assert "Ready to accept connections" in (tmp_path / "redis.log").read_text()


def test_two_runs_get_two_servers(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "a") as a, RedisServer(tmp_path / "b") as b:
        assert a.port != b.port
        with RespConnection(*a.address) as client:
            client.call("SET", "only-in-a", "1")
        with RespConnection(*b.address) as client:
            assert client.call("GET", "only-in-a") is None


def test_missing_redis_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'no-such-redis-server' not found on PATH"):
        RedisServer(tmp_path, executable="no-such-redis-server").start()


def test_redis_only_for_scenarios_that_need_it(tmp_path: Path) -> None:
    plain = scenario()
    slow = scenario(phases=[{"at": 20, "fault": "redis_slow", "duration": 10}])
    asked = scenario(params={"redis": True})
    provider = scenario(phases=[{"at": 20, "fault": "provider_slow", "duration": 10}])
    assert [needs_redis(s) for s in (plain, slow, asked, provider)] == [False, True, True, False]
    with run_redis(plain, tmp_path) as none:
        assert none is None
    with run_redis(slow, tmp_path) as redis:
        assert redis is not None
        assert ping(redis.host, redis.port)  # through the proxy
        assert redis.port != redis.server.port
        server_pid = redis.server.pid
    assert server_pid is not None
    assert not psutil.pid_exists(server_pid)


def test_litellm_gets_the_proxy_address_for_cache_and_router(redis: RunRedis) -> None:
    own = {
        "litellm_settings": {"cache_params": {"socket_timeout": 1.0, "host": "10.0.0.9"}},
        "router_settings": {"redis_host": "shared-redis", "redis_port": SHARED_REDIS_PORT},
    }
    gateway = GatewaySettings(proxy_config=own, env={"KEEP": "1"})
    build = BuildSettings(gateway="litellm", pip="litellm[proxy]==1.81.9")
    configured = with_redis(gateway, build, redis)
    config = proxy_config(configured, "http://127.0.0.1:1")
    cache = config["litellm_settings"]["cache_params"]
    assert config["litellm_settings"]["cache"] is True
    assert cache == {
        "type": "redis",
        "socket_timeout": 1.0,
        "host": "127.0.0.1",
        "port": redis.port,
    }
    router = config["router_settings"]
    assert (router["redis_host"], router["redis_port"]) == ("127.0.0.1", redis.port)
    assert configured.env["KEEP"] == "1"
    assert configured.env["REDIS_PORT"] == str(redis.port)
    assert "REDIS_URL" not in configured.env  # it would replace the config's client settings
    assert with_redis(gateway, build, None) is gateway


def test_other_gateways_get_the_address_in_their_environment(redis: RunRedis) -> None:
    gateway = GatewaySettings(kind="openai")
    build = BuildSettings(gateway="toy", command="toy --port {port}")
    configured = with_redis(gateway, build, redis)
    assert configured.proxy_config == {}
    assert configured.env["REDIS_HOST"] == "127.0.0.1"
    assert configured.env["REDIS_URL"] == f"redis://127.0.0.1:{redis.port}"
    url_build = BuildSettings(gateway="toy", url="http://127.0.0.1:4000")
    with pytest.raises(
        ConfigError, match=r"url build 'http://127\.0\.0\.1:4000' cannot be pointed"
    ):
        with_redis(gateway, url_build, redis)


def test_a_gateway_never_inherits_our_redis_settings(
    redis: RunRedis, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{SHARED_REDIS_PORT}")
    monkeypatch.setenv("REDIS_PASSWORD", "shared-secret")
    settings = fault_settings(tmp_path)
    build = settings.builds["fault"]
    gateway = with_redis(settings.gateways["fault"], build, redis)
    with start_gateway(build, gateway, settings, "http://127.0.0.1:9", tmp_path / "gw") as running:
        env = httpx.get(f"{running.base_url}/_hits", timeout=5).json()["env"]
    assert env == {
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(redis.port),
        "REDIS_URL": f"redis://127.0.0.1:{redis.port}",
    }
