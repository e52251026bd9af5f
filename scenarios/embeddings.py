"""Embeddings: one POST /v1/embeddings per task, a batch of inputs each.

Params (all optional): model (str, "text-embedding-3-small"), input_tokens (int, 128),
batch (int, 1: inputs per request).
"""

from __future__ import annotations

import random

from locust import task

from observatory.load.helpers import ObservatoryUser, embeddings, param, params, prompt


def settings(values: dict[str, object]) -> tuple[str, int, int]:
    model = param(values, "model", "text-embedding-3-small")
    return model, param(values, "input_tokens", 128), param(values, "batch", 1)


settings(params())  # bad parameters fail the run's start-up, not every request


class EmbeddingsUser(ObservatoryUser):
    def on_start(self) -> None:
        self.model, self.input_tokens, self.batch = settings(params(self))
        self.rng = random.Random()
        super().on_start()

    @task
    def embed(self) -> None:
        texts = [prompt(self.input_tokens, self.rng) for _ in range(self.batch)]
        embeddings(self, model=self.model, input=texts if self.batch > 1 else texts[0])
