"""redis-slow: a Redis that still answers, but slowly, on the path of every request.

The run gets a private Redis behind the observatory's fault proxy (a ``redis_slow`` phase
starts them; see docs/scenarios.md); the gateway uses it for its response cache and
router state. During the phase the proxy holds every chunk ``delay`` seconds in each
direction. The traffic is chat completions with fresh prompts (``_fault_traffic``), so
every request waits for at least one cache lookup.

Params: those of ``_fault_traffic`` (model, prompt_tokens, max_tokens, stream_share,
unique_prompts), plus ``redis: true`` when the scenario has no redis phase of its own.
"""

from __future__ import annotations

from _fault_traffic import DataPlaneUser, traffic

from observatory.load.helpers import params

traffic(params())  # bad parameters fail the run's start-up, not every request


class RedisSlowUser(DataPlaneUser):
    pass
