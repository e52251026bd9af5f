"""provider-degraded: the provider slows down, errors, then stalls mid-stream.

Phases (``provider_slow``, ``provider_errors``, ``provider_stall``) turn the mock upstream's
fault knobs through its admin API and restore them afterwards. The gateway should pass
errors on promptly, time stalled streams out, and return to its calm latency once the
provider recovers. Traffic: chat completions with fresh prompts, a quarter of them streamed
(``_fault_traffic``), so a stall hits streams (TTFT, inter-chunk gaps) and plain calls alike.

Params: those of ``_fault_traffic`` (model, prompt_tokens, max_tokens, stream_share,
unique_prompts) and ``timeout`` (the client's network timeout, s).
"""

from __future__ import annotations

from _fault_traffic import DataPlaneUser, traffic

from observatory.load.helpers import params

traffic(params())  # bad parameters fail the run's start-up, not every request


class ProviderDegradedUser(DataPlaneUser):
    pass
