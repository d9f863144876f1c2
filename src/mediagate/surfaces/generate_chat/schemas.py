"""Request and response models of the generate & chat API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

VIDEO_DURATIONS = (5, 10)


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=10_000)
    type: Literal["image", "video"]
    aspect_ratio: Literal["16:9", "1:1", "9:16"] | None = None
    duration: int | None = Field(None, description="Video only: 5 or 10 seconds (default 5)")


class GenerateAccepted(BaseModel):
    jobId: str  # noqa: N815 - the spec's field name
    status: str = Field(description='"queued"; with Prefer: wait=N, the status after waiting')


class JobStatus(BaseModel):
    jobId: str  # noqa: N815
    status: str
    type: str
    progress: int
    createdAt: str  # noqa: N815
    completedAt: str | None = None  # noqa: N815
    result: dict[str, Any] | None = None
    error: str | None = None


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=10_000)
    conversation_id: str | None = Field(None, max_length=64)


class ChatReply(BaseModel):
    reply: str
    timestamp: str
    conversation_id: str
