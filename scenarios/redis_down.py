"""redis-down: the gateway's Redis refuses connections, or swallows them without a word.

The run gets a private Redis behind the observatory's fault proxy (a ``redis_down`` phase
starts them; see docs/scenarios.md). During the phase the proxy either stops listening and
resets every connection (``mode: refuse``, like a dead server) or accepts connections and
forwards nothing (``mode: blackhole``, like a partition: each command waits for the
client's socket timeout). Afterwards it heals and the run measures the recovery. Traffic:
chat completions with fresh prompts (``_fault_traffic``).

Params: those of ``_fault_traffic`` (model, prompt_tokens, max_tokens, stream_share,
unique_prompts).
"""

from __future__ import annotations

from _fault_traffic import DataPlaneUser, traffic

from observatory.load.helpers import params

traffic(params())  # bad parameters fail the run's start-up, not every request


class RedisDownUser(DataPlaneUser):
    pass
