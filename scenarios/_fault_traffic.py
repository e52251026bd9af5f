"""Data-plane traffic of the fault scenarios: chat completions, part streamed, each one new.

Each prompt carries a fresh nonce, so a gateway's response cache never answers: every
request looks the cache up (with a Redis cache: a GET on the hot path), goes to the
provider and is written back. Without the nonce most requests would become cache hits
within seconds, and a degraded provider would never reach the client.

Params (all optional): model (str, gpt-4o-mini), prompt_tokens (int, 64), max_tokens
(int, 32), stream_share (float, 0.25: the share of requests streamed), unique_prompts
(bool, true).

Not a scenario itself (the leading underscore keeps it out of the scenario list): the
fault scenarios import it from their own directory, which Locust puts on ``sys.path``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from locust import task

from observatory.errors import InputError
from observatory.load.helpers import ObservatoryUser, chat, param, params, prompt


@dataclass(frozen=True)
class Traffic:
    model: str
    prompt_tokens: int
    max_tokens: int
    stream_share: float
    unique_prompts: bool


def traffic(values: dict[str, Any]) -> Traffic:
    """The data-plane parameters; InputError naming a bad one."""
    share = param(values, "stream_share", 0.25)
    if not 0.0 <= share <= 1.0:
        raise InputError(f"scenario param 'stream_share': expected 0..1, got {share!r}")
    return Traffic(
        model=param(values, "model", "gpt-4o-mini"),
        prompt_tokens=param(values, "prompt_tokens", 64),
        max_tokens=param(values, "max_tokens", 32),
        stream_share=share,
        unique_prompts=param(values, "unique_prompts", True),
    )


class DataPlaneUser(ObservatoryUser):
    """One chat completion per task (open-model pacing holds: one intended send per task)."""

    abstract = True

    def on_start(self) -> None:
        self.traffic = traffic(params(self))
        self.rng = random.Random()
        self.nonce = f"{self.rng.getrandbits(48):012x}"
        self.sent = 0
        super().on_start()

    @task
    def chat_completion(self) -> None:
        self.sent += 1
        text = prompt(self.traffic.prompt_tokens, self.rng)
        if self.traffic.unique_prompts:
            text = f"[{self.nonce}-{self.sent}] {text}"
        chat(
            self,
            model=self.traffic.model,
            messages=[{"role": "user", "content": text}],
            max_tokens=self.traffic.max_tokens,
            stream=self.rng.random() < self.traffic.stream_share,
        )
