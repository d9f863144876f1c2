"""Webhook endpoints and the delivery log: requests in, resources out."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mediagate.net.guard import FetchRefused, check_url
from mediagate.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

EVENT_TYPES = ("job.queued", "job.processing", "job.completed", "job.failed", "job.canceled")
EventType = Literal["job.queued", "job.processing", "job.completed", "job.failed", "job.canceled"]
MAX_URL = 2000


def check_webhook_url(url: str) -> str:
    """Syntax only; where the URL points is checked on every delivery attempt, because DNS
    can change after the endpoint was saved."""
    try:
        check_url(url, allowed_schemes=("https", "http"), max_url_length=MAX_URL)
    except FetchRefused as exc:
        raise ValueError(exc.message) from exc
    return url


def _unique(types: list[EventType] | None) -> list[EventType] | None:
    return None if types is None else list(dict.fromkeys(types))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=MAX_URL, description="https:// or http:// URL that receives POSTs")
    event_types: list[EventType] = Field(
        default_factory=list, description="Event types to receive; empty means all of them"
    )
    description: str = Field("", max_length=500)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return check_webhook_url(url)

    @field_validator("event_types")
    @classmethod
    def _types(cls, types: list[EventType]) -> list[EventType]:
        return list(dict.fromkeys(types))


class EndpointUpdate(BaseModel):
    """Only the fields sent change; ``null`` also means "leave as is"."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, max_length=MAX_URL)
    event_types: list[EventType] | None = None
    description: str | None = Field(None, max_length=500)
    enabled: bool | None = Field(None, description="true re-enables an endpoint disabled by a 410")

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_webhook_url(url)

    @field_validator("event_types")
    @classmethod
    def _types(cls, types: list[EventType] | None) -> list[EventType] | None:
        return _unique(types)

    def changes(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class Endpoint(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    disabled_reason: str | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> Endpoint:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            event_types=list(endpoint.event_types),
            description=endpoint.description,
            enabled=endpoint.enabled,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at.isoformat(),
            updated_at=endpoint.updated_at.isoformat(),
        )


class EndpointWithSecret(Endpoint):
    secret: str = Field(description="whsec_…; shown only when created or rotated")


class EndpointList(BaseModel):
    endpoints: list[Endpoint]


class Deleted(BaseModel):
    id: str
    deleted: Literal[True] = True


class SigningSecret(BaseModel):
    secret: str


class Attempt(BaseModel):
    attempt: int
    status_code: int | None
    error: str | None
    response_body: str | None
    duration_ms: int
    created_at: str

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> Attempt:
        return cls(
            attempt=attempt.attempt,
            status_code=attempt.status_code,
            error=attempt.error,
            response_body=attempt.response_body,
            duration_ms=attempt.duration_ms,
            created_at=attempt.created_at.isoformat(),
        )


class Delivery(BaseModel):
    id: str
    message_id: str
    event_type: str
    url: str
    endpoint_id: str | None
    job_id: str | None
    status: Literal["pending", "delivering", "succeeded", "failed"]
    attempts: int = Field(description="Attempts in the current round; a redelivery starts anew")
    next_attempt_at: str | None
    last_status_code: int | None
    last_error: str | None
    created_at: str
    updated_at: str
    attempt_log: list[Attempt] = Field(description="Every attempt ever made, oldest first")

    @classmethod
    def of(
        cls, delivery: WebhookDelivery, event_type: str, attempts: list[WebhookAttempt]
    ) -> Delivery:
        return cls(
            id=delivery.id,
            message_id=delivery.message_id,
            event_type=event_type,
            url=delivery.url,
            endpoint_id=delivery.endpoint_id,
            job_id=delivery.job_id,
            status=delivery.status,  # type: ignore[arg-type]
            attempts=delivery.attempts,
            next_attempt_at=_iso(delivery.next_attempt_at),
            last_status_code=delivery.last_status_code,
            last_error=delivery.last_error,
            created_at=delivery.created_at.isoformat(),
            updated_at=delivery.updated_at.isoformat(),
            attempt_log=[Attempt.of(a) for a in attempts],
        )


class DeliveryList(BaseModel):
    deliveries: list[Delivery]


class DeliveryPayload(BaseModel):
    message_id: str
    event_type: str
    created_at: str
    payload: dict[str, Any] = Field(description="The body, parsed")
    body: str = Field(description="The exact bytes that were signed and sent")
