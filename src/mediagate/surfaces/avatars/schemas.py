"""Request and response models of the avatars API, with its limits."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediagate.surfaces.native.schemas import check_webhook_url

MAX_REFERENCES = 6
MAX_REFERENCE_BYTES = 15 * 1024 * 1024
HintValue = str | int | float | bool | None


class OutputControls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    size: Literal["256x256", "512x512", "1024x1024"] = "1024x1024"
    format: Literal["png", "jpeg", "webp"] = "png"
    background: Literal["opaque", "transparent"] = "opaque"


class AvatarGenerate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=5000)
    hints: dict[str, HintValue] = Field(
        default_factory=dict, max_length=32, description="Flat: string, number or boolean values"
    )
    reference_images: list[str] | None = Field(None, min_length=1, max_length=MAX_REFERENCES)
    output: OutputControls = Field(default_factory=OutputControls)
    correlation_id: str | None = Field(None, max_length=200)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=16)
    webhook_url: str | None = Field(None, max_length=2000)

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, prompt: str) -> str:
        if not prompt.strip():
            raise ValueError("prompt must not be blank")
        return prompt

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, metadata: dict[str, str]) -> dict[str, str]:
        for key, value in metadata.items():
            if len(value) > 500:
                raise ValueError(f"metadata value of {key!r} is longer than 500 characters")
            if not 1 <= len(key) <= 40:
                raise ValueError("metadata keys must be 1-40 characters")
        return metadata

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        return None if url is None else check_webhook_url(url)


class AvatarAccepted(BaseModel):
    id: str
    object: Literal["job"] = "job"
    status: Literal["queued"] = "queued"
    created: int
    job_id: str


class AvatarSave(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)


class Avatar(BaseModel):
    id: str
    object: Literal["avatar"] = "avatar"
    name: str
    image_url: str
    job_id: str
    created: int


class AvatarList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Avatar]
    total: int
    limit: int
    offset: int
