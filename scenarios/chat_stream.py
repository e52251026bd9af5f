"""Streaming chat completions: SSE with usage; TTFT, every inter-chunk gap, tokens.

Params (all optional): model (str) or models ({name: weight}), prompt_tokens (int, 64),
max_tokens (int, 64).
"""

from __future__ import annotations

import random

from locust import task

from observatory.load.helpers import ObservatoryUser, Weighted, chat, param, params, prompt


def settings(values: dict[str, object]) -> tuple[dict[str, float], int, int]:
    models = param(values, "models", {param(values, "model", "gpt-4o-mini"): 1.0})
    return models, param(values, "prompt_tokens", 64), param(values, "max_tokens", 64)


settings(params())  # bad parameters fail the run's start-up, not every request


class ChatStreamUser(ObservatoryUser):
    def on_start(self) -> None:
        models, self.prompt_tokens, self.max_tokens = settings(params(self))
        self.models = Weighted(models)
        self.rng = random.Random()
        super().on_start()

    @task
    def chat_stream(self) -> None:
        text = prompt(self.prompt_tokens, self.rng)
        chat(
            self,
            model=self.models.draw(self.rng),
            messages=[{"role": "user", "content": text}],
            max_tokens=self.max_tokens,
            stream=True,
        )
