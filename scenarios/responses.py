"""The Responses API: one POST /v1/responses per task, streamed or not.

Params (all optional): model (str, "gpt-4o-mini"), prompt_tokens (int, 64),
max_output_tokens (int, 32), stream (bool, false).
"""

from __future__ import annotations

import random

from locust import task

from observatory.load.helpers import ObservatoryUser, param, params, prompt, responses


def settings(values: dict[str, object]) -> tuple[str, int, int, bool]:
    return (
        param(values, "model", "gpt-4o-mini"),
        param(values, "prompt_tokens", 64),
        param(values, "max_output_tokens", 32),
        param(values, "stream", False),
    )


settings(params())  # bad parameters fail the run's start-up, not every request


class ResponsesUser(ObservatoryUser):
    def on_start(self) -> None:
        self.model, self.prompt_tokens, self.max_tokens, self.stream = settings(params(self))
        self.rng = random.Random()
        super().on_start()

    @task
    def respond(self) -> None:
        responses(
            self,
            model=self.model,
            input=prompt(self.prompt_tokens, self.rng),
            max_output_tokens=self.max_tokens,
            stream=self.stream,
        )
