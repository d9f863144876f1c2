"""Request and response bodies of the image editor API, as its spec names them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mediagate.db.base import MAX_BIGINT

ModelTier = Literal["pro", "standard", "creative"]
UploadMime = Literal["image/jpeg", "image/png", "image/webp", "image/gif"]
# "platform" runs on the server's own provider keys and costs credits; the others use the
# workspace's own key for that provider (BYOK) and cost none.
PROVIDERS = ("platform", "openai", "google", "fal", "kie")
TIER_MODELS: dict[str, str] = {
    "pro": "image-editor-pro",
    "standard": "image-editor-standard",
    "creative": "image-editor-creative",
}
MAX_IMAGE_URL = 2000
MAX_PER_PAGE = 100


class UploadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    file_name: str = Field(min_length=1, max_length=255)
    mime_type: UploadMime
    file_size: int | None = Field(
        None, ge=0, le=MAX_BIGINT, description="Bytes; kept for the record only"
    )


class UploadUrl(BaseModel):
    image_id: str
    upload_url: str
    public_url: str
    expires_in: int


class ProcessRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=10_000)
    model_tier: ModelTier
    image_id: str | None = Field(None, description="From /upload-url or an earlier result")
    image_url: str | None = Field(
        None, max_length=MAX_IMAGE_URL, description="HTTPS only; fetched by the server"
    )
    style_id: str | None = None
    character_id: str | None = None
    provider: str = Field("platform", description="platform, openai, google, fal or kie")


class EstimateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model_tier: ModelTier
    provider: str = "platform"


class Estimate(BaseModel):
    model_tier: str
    provider: str
    estimated_credits: int
    is_exact: bool
    available_credits: int
    can_proceed: bool
    byok_skips_credits: bool


class Processed(BaseModel):
    job_id: str
    status: str
    result_url: str | None
    result_image_id: str | None
    model_tier: str
    provider_used: str
    credits_consumed: int
    processing_ms: int | None
    created_at: str
    completed_at: str | None


class EditorJob(Processed):
    prompt: str | None
    provider: str
    image_id: str | None
    image_url: str | None
    style_id: str | None
    character_id: str | None
    error: str | None


def success(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data}


def stamp(at: datetime) -> str:
    """This API's timestamps: ISO 8601 in UTC with milliseconds (``2026-05-04T11:00:00.000Z``)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
