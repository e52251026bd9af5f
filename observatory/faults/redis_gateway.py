"""How a gateway is pointed at the run's Redis (through the fault proxy, never the server).

LiteLLM (checked against 1.81.9 with Redis ``MONITOR`` and the proxy's counters):

- ``litellm_settings.cache: true`` with ``cache_params: {type: redis, host, port}`` puts Redis
  on the path of every request: the response-cache lookup (GET) is awaited before the call
  to the provider, and the proxy's parallel-request limiter, which then keeps its counters in
  the same Redis, awaits a Lua script (EVALSHA) in its pre-call hook. The response write (SET)
  and the spend/usage counters (INCRBYFLOAT, TTL) follow in the background.
- ``router_settings.redis_host/redis_port`` alone shares cooldowns and usage counters between
  instances, but every call is made in the background: a slow or dead Redis leaves request
  latency unchanged (also with ``routing_strategy: usage-based-routing-v2``).

So a LiteLLM gateway gets both: the cache (hot path) and the router state (same Redis), with
the configuration's own ``proxy_config`` able to change anything but the address (e.g.
``cache_params.socket_timeout``, 5 s by default: how long a black-holed Redis stalls each
request). Every gateway also gets ``REDIS_HOST`` and ``REDIS_PORT``; other gateways get
``REDIS_URL`` too, LiteLLM must not: a ``REDIS_URL`` in its environment replaces the config's
Redis client settings (``socket_timeout`` among them: a black-holed Redis then stalls every
request 5 s instead of the configured 1 s, measured).
"""

from __future__ import annotations

from typing import Any

from observatory.builds.litellm import deep_merge
from observatory.errors import ConfigError
from observatory.faults.redis_server import RunRedis
from observatory.settings import BuildSettings, GatewaySettings

LITELLM_DEFAULTS: dict[str, Any] = {
    "litellm_settings": {"cache": True, "cache_params": {"type": "redis"}},
}


def litellm_redis(host: str, port: int) -> dict[str, Any]:
    """The part of a LiteLLM config that names the Redis address (always ours)."""
    return {
        "litellm_settings": {"cache_params": {"host": host, "port": port}},
        "router_settings": {"redis_host": host, "redis_port": port},
    }


def with_redis(
    gateway: GatewaySettings, build: BuildSettings, redis: RunRedis | None
) -> GatewaySettings:
    """``gateway`` configured to use the run's Redis (unchanged when there is none)."""
    if redis is None:
        return gateway
    if build.url is not None:
        raise ConfigError(
            f"url build {build.url!r} cannot be pointed at the run's Redis: runs with "
            "redis_* phases or the scenario param redis: true need a pip or command build"
        )
    env = {**gateway.env, "REDIS_HOST": redis.host, "REDIS_PORT": str(redis.port)}
    update: dict[str, Any] = {"env": env}
    if gateway.kind == "litellm":
        config = deep_merge(LITELLM_DEFAULTS, gateway.proxy_config)
        update["proxy_config"] = deep_merge(config, litellm_redis(redis.host, redis.port))
    else:
        env["REDIS_URL"] = f"redis://{redis.host}:{redis.port}"
    return gateway.model_copy(update=update)
