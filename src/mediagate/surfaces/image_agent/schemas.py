"""Request and response models of the image agent API, with the spec's limits."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediagate.surfaces.native.schemas import check_webhook_url

AspectRatio = Literal["auto", "9:16", "2:3", "3:4", "4:5", "1:1", "5:4", "4:3", "3:2", "16:9"]
Resolution = Literal["2K", "4K"]
Tool = Literal[
    "generate", "edit", "compose", "reframe", "resize", "adjust", "overlay_text", "finish"
]
MAX_IMAGES = 10
MAX_IMAGE_BYTES = 30 * 1024 * 1024


class ImageAgentRequest(BaseModel):
    """The fields of ``POST /v2/image/agent`` (form fields or JSON). Images come separately
    in multipart; in JSON ``images`` holds URLs or data URLs."""

    model_config = ConfigDict(extra="forbid")

    instructions: str = Field(min_length=3, max_length=10_000)
    model_id: Literal["image-agent-1-preview"] = "image-agent-1-preview"
    agent_id: str | None = Field(None, max_length=64)
    aspect_ratio: AspectRatio = "1:1"
    resolution: Resolution = "2K"
    webhook_url: str | None = Field(None, max_length=2000)
    max_steps: int = Field(10, ge=1, le=30)
    images: list[str] = Field(default_factory=list, max_length=MAX_IMAGES)

    @field_validator("images", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        return None if url is None else check_webhook_url(url)


class JobLinks(BaseModel):
    self: str
    stream: str


class JobAccepted(BaseModel):
    job_id: str
    links: JobLinks


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    instructions: str = Field("", max_length=10_000)
    aspect_ratio: AspectRatio | None = None
    resolution: Resolution | None = None
    max_steps: int | None = Field(None, ge=1, le=30)
    allowed_tools: list[Tool] | None = Field(None, min_length=1)


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    instructions: str | None = Field(None, max_length=10_000)
    aspect_ratio: AspectRatio | None = None
    resolution: Resolution | None = None
    max_steps: int | None = Field(None, ge=1, le=30)
    allowed_tools: list[Tool] | None = Field(None, min_length=1)


class Agent(BaseModel):
    id: str
    object: Literal["agent"] = "agent"
    name: str
    instructions: str
    aspect_ratio: str | None
    resolution: str | None
    max_steps: int | None
    allowed_tools: list[str] | None
    created_at: str
    updated_at: str


class AgentList(BaseModel):
    data: list[Agent]
    total: int
    limit: int
    offset: int
