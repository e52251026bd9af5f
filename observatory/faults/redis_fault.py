"""The ``redis_slow`` and ``redis_down`` injectors: switch the run's Redis proxy, then heal it.

``measure`` reports what the proxy saw while the fault was on (counters between apply and
remove: chunks held and for how long, connections reset or black-holed, new connections
accepted), what healing reset, and whether Redis answered through the proxy afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from observatory.faults.params import RedisDownParams, RedisSlowParams
from observatory.faults.proxy import delta
from observatory.faults.redis_server import RunRedis
from observatory.faults.resp import ping


@dataclass
class RedisFault:
    redis: RunRedis
    params: RedisSlowParams | RedisDownParams

    @property
    def kind(self) -> str:
        if isinstance(self.params, RedisSlowParams):
            return f"slow ({self.params.delay:g} s per chunk and direction)"
        return self.params.mode

    def apply(self) -> None:
        proxy = self.redis.proxy
        self._before = proxy.snapshot()
        if isinstance(self.params, RedisSlowParams):
            proxy.slow(self.params.delay)
        elif self.params.mode == "refuse":
            proxy.refuse()
        else:
            proxy.blackhole()

    def remove(self) -> None:
        proxy = self.redis.proxy
        self._during = proxy.snapshot()
        proxy.heal()
        self._healed = proxy.snapshot()
        self._answers = ping(*proxy.address, timeout=2.0)

    def measure(self) -> dict[str, Any]:
        during = delta(self._before, self._during)
        for key in ("mode", "delay_s", "open_connections"):
            during[key] = self._during[key]
        return {
            "fault_point": f"redis proxy :{self.redis.port} -> redis-server "
            f":{self.redis.server.port}",
            "fault": self.kind,
            "during": during,
            "reset_when_healed": self._healed["reset"] - self._during["reset"],
            "redis_answers_after": self._answers,
            "redis_server_alive": not self.redis.server.crashed(),
        }
