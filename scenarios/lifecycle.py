"""Lifecycle traffic: what only time finds, provoked within minutes.

Chat completions, part streamed, where deployments join late and go quiet longer than
common cache TTLs, a fleet of distinct deployments is visited in turn (so caches holding a
few hundred entries evict), and clients walk away: streams closed after a few chunks,
requests cancelled at a client timeout, long streams. Each model reports under its own
request name (``chat:gpt-4o``, ``chat_stream:gpt-4o``; the fleet as ``chat:fleet``).

Params: see observatory.load.lifecycle (models, start_after, idle, fleet, fleet_share,
abandon_share, abandon_after, cancel_share, cancel_after, long_share, long_max_tokens,
stream_share), plus prompt_tokens (int, 64) and max_tokens (int, 32).
"""

from __future__ import annotations

import random

from locust import task

from observatory.load.helpers import ObservatoryUser, chat, elapsed, param, params, prompt
from observatory.load.lifecycle import Walker, plan_from

plan_from(params())  # bad parameters fail the run's start-up, not every request


class LifecycleUser(ObservatoryUser):
    def on_start(self) -> None:
        values = params(self)
        self.rng = random.Random()
        plan = plan_from(values)
        self.walker = Walker(plan, self.rng, offset=self.rng.randrange(max(1, plan.fleet)))
        self.prompt_tokens = param(values, "prompt_tokens", 64)
        self.max_tokens = param(values, "max_tokens", 32)
        super().on_start()

    @task
    def one_request(self) -> None:
        action = self.walker.next(elapsed())
        kind = "chat_stream" if action.stream else "chat"
        chat(
            self,
            model=action.model,
            messages=[{"role": "user", "content": prompt(self.prompt_tokens, self.rng)}],
            max_tokens=action.max_tokens or self.max_tokens,
            stream=action.stream,
            name=None if action.name is None else f"{kind}:{action.name}",
            abandon_after=action.abandon_after,
            cancel_after=action.cancel_after,
        )
