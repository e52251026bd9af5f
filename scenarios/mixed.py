"""A production-like mix: several APIs and models, prompt sizes, part streaming.

Each task draws one request kind by weight, a model and a prompt size, and sends one
request (so open-model pacing holds: one intended send per task).

Params (all optional; weights need not sum to 1):
  weights        {kind: weight}, kinds: chat, chat_stream, embeddings, responses, messages
                 (default 0.45, 0.30, 0.15, 0.05, 0.05)
  models         {chat model: weight} (default gpt-4o-mini 0.7, gpt-4o 0.3)
  prompt_tokens  {tokens: weight} as {"32": 0.6, "256": 0.3, "2048": 0.1}
  max_tokens     int (64), embedding_model str, anthropic_model str
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from locust import task

from observatory.errors import InputError
from observatory.load.helpers import (
    ObservatoryUser,
    Weighted,
    anthropic_messages,
    chat,
    embeddings,
    param,
    params,
    prompt,
    responses,
)

DEFAULT_WEIGHTS = {
    "chat": 0.45,
    "chat_stream": 0.30,
    "embeddings": 0.15,
    "responses": 0.05,
    "messages": 0.05,
}
KINDS = tuple(DEFAULT_WEIGHTS)


@dataclass(frozen=True)
class Mix:
    weights: dict[str, float]
    models: dict[str, float]
    sizes: dict[str, float]
    max_tokens: int
    embedding_model: str
    anthropic_model: str


def _weights(values: dict[str, object], name: str, default: dict[str, float]) -> dict[str, float]:
    weights = param(values, name, default)
    bad = {k: v for k, v in weights.items() if not isinstance(v, int | float) or v < 0}
    if bad or not any(weights.values()):
        raise InputError(f"scenario param {name!r}: weights must be >= 0, not all 0; got {bad}")
    return {str(k): float(v) for k, v in weights.items()}


def settings(values: dict[str, object]) -> Mix:
    weights = _weights(values, "weights", DEFAULT_WEIGHTS)
    unknown = sorted(set(weights) - set(KINDS))
    if unknown:
        raise InputError(f"scenario param 'weights': unknown kind(s) {unknown}; known: {KINDS}")
    sizes = _weights(values, "prompt_tokens", {"32": 0.6, "256": 0.3, "2048": 0.1})
    if not all(size.isdigit() and int(size) > 0 for size in sizes):
        raise InputError(f"scenario param 'prompt_tokens': keys must be token counts: {sizes}")
    return Mix(
        weights=weights,
        models=_weights(values, "models", {"gpt-4o-mini": 0.7, "gpt-4o": 0.3}),
        sizes=sizes,
        max_tokens=param(values, "max_tokens", 64),
        embedding_model=param(values, "embedding_model", "text-embedding-3-small"),
        anthropic_model=param(values, "anthropic_model", "claude-3-5-haiku"),
    )


settings(params())  # bad parameters fail the run's start-up, not every request


class MixedUser(ObservatoryUser):
    def on_start(self) -> None:
        self.mix = settings(params(self))
        self.rng = random.Random()
        self.kinds = Weighted(self.mix.weights)
        self.models = Weighted(self.mix.models)
        self.sizes = Weighted(self.mix.sizes)
        self.send: dict[str, Callable[[str], bool]] = {
            "chat": lambda text: self._chat(text, stream=False),
            "chat_stream": lambda text: self._chat(text, stream=True),
            "embeddings": lambda text: embeddings(self, model=self.mix.embedding_model, input=text),
            "responses": lambda text: responses(
                self,
                model=self.models.draw(self.rng),
                input=text,
                max_output_tokens=self.mix.max_tokens,
            ),
            "messages": lambda text: anthropic_messages(
                self,
                model=self.mix.anthropic_model,
                messages=[{"role": "user", "content": text}],
                max_tokens=self.mix.max_tokens,
                stream=self.rng.random() < 0.5,
            ),
        }
        super().on_start()

    def _chat(self, text: str, *, stream: bool) -> bool:
        return chat(
            self,
            model=self.models.draw(self.rng),
            messages=[{"role": "user", "content": text}],
            max_tokens=self.mix.max_tokens,
            stream=stream,
        )

    @task
    def one_request(self) -> None:
        kind = self.kinds.draw(self.rng)
        text = prompt(int(self.sizes.draw(self.rng)), self.rng)
        self.send[kind](text)
