"""The transactional outbox: job events become webhook messages in the same transaction.

The body is the job in the envelope of the surface that created it, plus ``type`` and
``timestamp`` (as Standard Webhooks suggests), rendered once so that every attempt sends the
same bytes. A job's own ``webhook_url`` hears about terminal events; workspace endpoints hear
about the event types they subscribed to (all when they named none).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.assets.models import Asset
from mediagate.assets.repository import AssetRepository
from mediagate.jobs import views
from mediagate.jobs.models import Job
from mediagate.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from mediagate.webhooks.repository import WebhookRepository

if TYPE_CHECKING:
    from mediagate.runtime import Runtime

JOB_URL_EVENTS = {"job.completed", "job.failed", "job.canceled"}


def new_message_id() -> str:
    return "msg_" + secrets.token_hex(12)


def public_base_url(runtime: Runtime) -> str:
    settings = runtime.settings
    return (settings.public_base_url or f"http://{settings.host}:{settings.port}").rstrip("/")


async def enqueue_job_event(
    session: AsyncSession, runtime: Runtime, job: Job, event_type: str, now: datetime
) -> WebhookMessage | None:
    endpoints = await WebhookRepository(session).enabled_endpoints(job.workspace_id)
    if not destinations(endpoints, job, event_type):
        return None
    assets = await AssetRepository(session).for_job(job.id)
    built = build_message(runtime, endpoints, job, assets, event_type, now)
    assert built is not None
    message, deliveries = built
    await WebhookRepository(session).add_message(message, deliveries)
    await runtime.bus.notify(session, "webhooks")
    return message


def destinations(
    endpoints: Sequence[WebhookEndpoint], job: Job, event_type: str
) -> list[tuple[str | None, str]]:
    """``(endpoint id, url)`` of everyone who hears about ``event_type`` of this job."""
    found: list[tuple[str | None, str]] = [
        (endpoint.id, endpoint.url)
        for endpoint in endpoints
        if not endpoint.event_types or event_type in endpoint.event_types
    ]
    if job.webhook_url and event_type in JOB_URL_EVENTS:
        found.append((None, job.webhook_url))
    return found


def build_message(
    runtime: Runtime,
    endpoints: Sequence[WebhookEndpoint],
    job: Job,
    assets: Sequence[Asset],
    event_type: str,
    now: datetime,
) -> tuple[WebhookMessage, list[WebhookDelivery]] | None:
    """The message for this event and one delivery per destination; None if nobody hears."""
    targets = destinations(endpoints, job, event_type)
    if not targets:
        return None
    body = views.render(
        job,
        assets,
        public_base_url(runtime),
        runtime.settings.signing_key,
        runtime.settings.asset_url_ttl_seconds,
    )
    payload = {"type": event_type, "timestamp": now.isoformat(), **body}
    message = WebhookMessage(
        id=new_message_id(),
        workspace_id=job.workspace_id,
        job_id=job.id,
        event_type=event_type,
        payload=json.dumps(payload),
        created_at=now,
    )
    deliveries = [
        WebhookDelivery(
            message_id=message.id,
            workspace_id=job.workspace_id,
            job_id=job.id,
            endpoint_id=endpoint_id,
            url=url,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for endpoint_id, url in targets
    ]
    return message, deliveries
