"""Anthropic Messages: one POST /v1/messages per task (Bearer auth), streamed or not.

Params (all optional): model (str, "claude-3-5-haiku"), prompt_tokens (int, 64),
max_tokens (int, 32), stream (bool, false).
"""

from __future__ import annotations

import random

from locust import task

from observatory.load.helpers import ObservatoryUser, anthropic_messages, param, params, prompt


def settings(values: dict[str, object]) -> tuple[str, int, int, bool]:
    return (
        param(values, "model", "claude-3-5-haiku"),
        param(values, "prompt_tokens", 64),
        param(values, "max_tokens", 32),
        param(values, "stream", False),
    )


settings(params())  # bad parameters fail the run's start-up, not every request


class AnthropicMessagesUser(ObservatoryUser):
    def on_start(self) -> None:
        self.model, self.prompt_tokens, self.max_tokens, self.stream = settings(params(self))
        self.rng = random.Random()
        super().on_start()

    @task
    def message(self) -> None:
        anthropic_messages(
            self,
            model=self.model,
            messages=[{"role": "user", "content": prompt(self.prompt_tokens, self.rng)}],
            max_tokens=self.max_tokens,
            stream=self.stream,
        )
