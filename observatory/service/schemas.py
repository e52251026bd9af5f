"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI docs).

Request bodies forbid unknown fields: a caller cannot smuggle a ``command`` or ``url`` build
in, and a typo is an error rather than silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, field_validator

from observatory.domain import MAX_ID
from observatory.durations import parse_duration
from observatory.errors import InputError

RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="A run or validation id.")]


class ValidationBody(BaseModel):
    """POST /api/v1/validations."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"build": "litellm==1.81.9", "scenarios": ["chat-steady"], "tag": "v1.81.9"}
            ]
        },
    )

    build: str = Field(
        min_length=1,
        max_length=300,
        description="A configured build name, or an exact version of a configured "
        "gateway's package such as 'litellm==1.81.9'.",
    )
    scenarios: list[str] = Field(min_length=1, max_length=50, description="Scenario names.")
    duration: Annotated[
        float | None,
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]}),
    ] = Field(
        default=None,
        description="Override the scenarios' duration: '5m', '24h' or seconds (1s..7d).",
    )
    tag: str | None = Field(default=None, max_length=200, description="Release tag.")
    baseline: str = Field(
        default="auto",
        max_length=20,
        description="'auto', 'none', 'alongside' (the last stable build measured side by "
        "side with the candidate), or the id of a run.",
    )
    requester: str | None = Field(default=None, max_length=200)
    source: Literal["api", "ci"] = "api"

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> float | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except InputError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("scenarios")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each scenario may be given once")
        return value


class RunRef(BaseModel):
    id: int
    scenario: str
    role: str
    report_url: str


class ValidationCreated(BaseModel):
    validation_id: int
    run_ids: list[int] = Field(description="In execution order: baselines first.")
    candidate_run_ids: list[int]
    report_urls: list[str] = Field(description="Report URL of each candidate run.")
    runs: list[RunRef]
    notes: list[str]
    status_url: str


class BuildView(BaseModel):
    name: str
    gateway: str
    version: str
    channel: str
    provision_kind: str
    promoted_at: datetime | None
    created_at: datetime


class RunView(BaseModel):
    id: int
    validation_id: int | None
    scenario: str
    role: str
    build: str
    build_version: str
    status: str
    verdict: str | None
    end_reason: str | None
    verdict_reason: str | None
    progress: dict[str, Any]
    elapsed_s: float | None
    duration_s: float
    baseline_run_id: int | None
    claimed_by: str | None
    lease_until: datetime | None
    cancel_requested: bool
    waiting_reason: str | None = Field(
        default=None,
        description="Why no worker of this service claims this queued run, if none will.",
    )
    tags: list[Any]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    report_url: str
    report_ready: bool
    windows_csv_url: str


class ValidationView(BaseModel):
    id: int
    build: str
    scenarios: list[Any]
    tag: str | None
    source: str
    requester: str | None
    schedule: str | None
    fire_time: datetime | None
    created_at: datetime
    status: Literal["queued", "running", "finished"]
    verdict: str | None = Field(
        description="When finished: pass, regression, inconclusive, no_baseline or error."
    )
    exit_code: int | None = Field(description="The project's exit code for the verdict.")
    candidate_run_ids: list[int]
    runs: list[RunView] | None = None


class QueuedRun(BaseModel):
    position: int
    run: RunView
    waiting_for: int | None = Field(description="The baseline run it waits for, if any.")


class QueueView(BaseModel):
    load_slots: int
    active: list[RunView]
    queued: list[QueuedRun]


class CancelResult(BaseModel):
    run_id: int
    status: str
    message: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    components: dict[str, Literal["alive", "dead", "disabled"]]
