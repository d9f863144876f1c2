"""Request and response models of the native and agent credits API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from mediagate.net.guard import FetchRefused, check_url

MAX_PROMPT = 10_000
MAX_INPUT_IMAGES = 10


class UnitsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int | None = Field(None, description="Images or tracks: 1, 2, 4 or 8 for images")
    resolution: str | None = Field(None, description="1K/2K/4K for images; 720p/1080p for video")
    duration: int | None = Field(None, description="Seconds, for video and music")
    aspect_ratio: str | None = Field(None, description="e.g. 1:1, 16:9, 9:16")


def check_webhook_url(url: str) -> str:
    """Syntax only; where it points is checked at delivery time, on every attempt."""
    try:
        check_url(url, allowed_schemes=("https", "http"), max_url_length=2000)
    except FetchRefused as exc:
        raise ValueError(exc.message) from exc
    return url


def _check_input_url(url: str) -> str:
    if url.startswith("data:"):
        if not url.startswith("data:image/") or ";base64," not in url[:100]:
            raise ValueError("data URLs must look like data:image/<type>;base64,<data>")
        return url
    try:
        check_url(url, allowed_schemes=("https", "http"), max_url_length=2000)
    except FetchRefused as exc:
        raise ValueError(exc.message) from exc
    return url


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(
        min_length=1,
        max_length=255,
        description="Your idempotency key: a retry with it never pays twice",
    )
    model: str = Field(min_length=1, max_length=120)
    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT)
    product: Literal["image", "video", "music"] | None = None
    units: UnitsIn | None = None
    input_image_urls: list[str] = Field(default_factory=list, max_length=MAX_INPUT_IMAGES)
    price_version: str | None = Field(None, max_length=40)
    webhook_url: str | None = Field(
        None, max_length=2000, description="Receives job.completed / job.failed / job.canceled"
    )

    @field_validator("input_image_urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        return [_check_input_url(u) for u in urls]

    @field_validator("webhook_url")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        return None if url is None else check_webhook_url(url)


class GenerateResult(BaseModel):
    task_id: str
    provider_task_id: str | None
    status: str = Field(description='"pending"; with Prefer: wait, the final status if reached')
    usage_event_id: str
    job: dict[str, Any] | None = Field(None, description="The job, when Prefer: wait was sent")


class EstimateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=120)
    product: Literal["image", "video", "music"] | None = None
    units: UnitsIn | None = None
    input_image_urls: list[str] = Field(default_factory=list, max_length=MAX_INPUT_IMAGES)
    price_version: str | None = Field(None, max_length=40)


class Estimate(BaseModel):
    model: str
    product: str
    units: dict[str, Any]
    credits: int
    unit_credits: int
    breakdown: list[dict[str, Any]]
    price_version: str
    available: int
    can_proceed: bool


class CreditBalance(BaseModel):
    balance: int
    held: int
    available: int


class ModelInfo(BaseModel):
    id: str
    product: str
    credits: int
    notes: str
    inputs: list[str]
    resolutions: list[str]
    durations: list[int]
    available: bool


class ModelList(BaseModel):
    models: list[ModelInfo]
    price_version: str


class JobOutput(BaseModel):
    id: str
    index: int
    url: str
    mime_type: str
    bytes: int
    width: int | None
    height: int | None
    duration_seconds: float | None
    sha256: str


class JobCredits(BaseModel):
    estimated: int
    held: int
    charged: int


class JobView(BaseModel):
    id: str
    object: Literal["job"] = "job"
    status: str
    progress: float
    progress_message: str | None
    model: str
    product: str
    surface: str
    engine: str | None
    mode: str
    outputs: list[JobOutput]
    error: dict[str, Any] | None
    credits: JobCredits
    price_version: str
    usage_event_id: str | None
    provider_task_id: str | None
    attempts: int
    correlation_id: str | None
    metadata: dict[str, Any]
    webhook_url: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    links: dict[str, str]


class ExchangeRequest(BaseModel):
    identity_token: str = Field(
        min_length=1,
        max_length=8192,
        validation_alias=AliasChoices("identity_token", "token", "id_token"),
        description="The identity JWT issued by the configured identity provider",
    )


class AccessToken(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    workspace_id: str
    member_id: str
