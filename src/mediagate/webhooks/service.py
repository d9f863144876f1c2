"""Webhook use cases: endpoints, signing secrets and the delivery log.

Like every service it only flushes; the caller's unit of work commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.errors import Conflict, NotFound
from mediagate.webhooks import secrets
from mediagate.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from mediagate.webhooks.repository import WebhookRepository
from mediagate.webhooks.schemas import EndpointCreate, EndpointUpdate

if TYPE_CHECKING:
    from mediagate.runtime import Runtime


@dataclass
class DeliveryRecord:
    """A delivery with what the log shows beside it."""

    delivery: WebhookDelivery
    event_type: str
    attempts: list[WebhookAttempt]


class WebhookService:
    """Manage a workspace's webhooks.

    >>> async with runtime.db.writer() as session:  # doctest: +SKIP
    ...     endpoint, secret = await WebhookService(session, runtime).create_endpoint(ws, body)
    """

    def __init__(self, session: AsyncSession, runtime: Runtime) -> None:
        self.session = session
        self.runtime = runtime
        self.settings = runtime.settings
        self.repo = WebhookRepository(session)

    # ------------------------------------------------------------------ endpoints

    async def create_endpoint(
        self, workspace_id: str, data: EndpointCreate
    ) -> tuple[WebhookEndpoint, str]:
        """Make an endpoint; returns it with its secret, which is shown this once."""
        now = self.runtime.clock.now()
        secret = secrets.new_signing_secret()
        endpoint = await self.repo.add_endpoint(
            WebhookEndpoint(
                workspace_id=workspace_id,
                url=data.url,
                description=data.description,
                event_types=list(data.event_types),
                secret_encrypted=secrets.encrypt(self.settings, secret),
                enabled=True,
                created_at=now,
                updated_at=now,
            )
        )
        return endpoint, secret

    async def endpoints(self, workspace_id: str) -> Sequence[WebhookEndpoint]:
        return await self.repo.endpoints(workspace_id)

    async def endpoint(self, workspace_id: str, endpoint_id: str) -> WebhookEndpoint:
        """An endpoint of this workspace; anyone else's is indistinguishable from missing."""
        endpoint = await self.repo.endpoint(endpoint_id, workspace_id)
        if endpoint is None:
            raise NotFound(f"no webhook endpoint {endpoint_id!r}", code="webhook_not_found")
        return endpoint

    async def update_endpoint(
        self, workspace_id: str, endpoint_id: str, data: EndpointUpdate
    ) -> WebhookEndpoint:
        endpoint = await self.endpoint(workspace_id, endpoint_id)
        changes = data.changes()
        if "url" in changes:
            endpoint.url = changes["url"]
        if "description" in changes:
            endpoint.description = changes["description"]
        if "event_types" in changes:
            endpoint.event_types = list(changes["event_types"])
        if "enabled" in changes:
            endpoint.enabled = changes["enabled"]
            endpoint.disabled_reason = None if endpoint.enabled else "disabled through the API"
        endpoint.updated_at = self.runtime.clock.now()
        await self.session.flush()
        return endpoint

    async def delete_endpoint(self, workspace_id: str, endpoint_id: str) -> None:
        # Its deliveries stay in the log; pending ones fail when their turn comes.
        await self.repo.delete_endpoint(await self.endpoint(workspace_id, endpoint_id))

    async def rotate_secret(
        self, workspace_id: str, endpoint_id: str
    ) -> tuple[WebhookEndpoint, str]:
        """Replace the secret at once: the next attempt is signed with the new one only."""
        endpoint = await self.endpoint(workspace_id, endpoint_id)
        secret = secrets.new_signing_secret()
        endpoint.secret_encrypted = secrets.encrypt(self.settings, secret)
        endpoint.updated_at = self.runtime.clock.now()
        await self.session.flush()
        return endpoint, secret

    async def endpoint_secret(self, endpoint: WebhookEndpoint) -> str:
        return secrets.decrypt(self.settings, endpoint.secret_encrypted)

    # ------------------------------------------------------------------ default secret

    async def default_secret(self, workspace_id: str) -> str:
        """The secret that signs deliveries to jobs' own ``webhook_url``; made on first need."""
        stored = await self.repo.workspace_secret(workspace_id)
        if stored is None:
            fresh = secrets.encrypt(self.settings, secrets.new_signing_secret())
            await self.repo.set_workspace_secret(workspace_id, fresh, only_if_missing=True)
            # Read back: a concurrent creator may have won, and its secret is the one.
            stored = await self.repo.workspace_secret(workspace_id)
            assert stored is not None
        return secrets.decrypt(self.settings, stored)

    async def rotate_default_secret(self, workspace_id: str) -> str:
        secret = secrets.new_signing_secret()
        encrypted = secrets.encrypt(self.settings, secret)
        await self.repo.set_workspace_secret(workspace_id, encrypted, only_if_missing=False)
        return secret

    # ------------------------------------------------------------------ delivery log

    async def deliveries(
        self,
        workspace_id: str,
        *,
        job_id: str | None = None,
        endpoint_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[DeliveryRecord]:
        rows = await self.repo.deliveries(
            workspace_id, job_id=job_id, endpoint_id=endpoint_id, status=status, limit=limit
        )
        attempts = await self.repo.attempts_of([d.id for d, _ in rows])
        return [DeliveryRecord(d, event_type, attempts[d.id]) for d, event_type in rows]

    async def delivery(self, workspace_id: str, delivery_id: str) -> DeliveryRecord:
        row = await self.repo.delivery(delivery_id, workspace_id)
        if row is None:
            raise NotFound(f"no webhook delivery {delivery_id!r}", code="delivery_not_found")
        delivery, event_type = row
        return DeliveryRecord(delivery, event_type, list(await self.repo.attempts(delivery.id)))

    async def redeliver(self, workspace_id: str, delivery_id: str) -> DeliveryRecord:
        """Queue the message again for its destination, whatever became of it; the log keeps
        the earlier attempts and a new round of attempts begins."""
        record = await self.delivery(workspace_id, delivery_id)
        delivery = record.delivery
        now = self.runtime.clock.now()
        leased = delivery.lease_expires_at is not None and delivery.lease_expires_at > now
        if delivery.status == "delivering" and leased:
            raise Conflict("this delivery is being attempted right now", code="delivery_busy")
        if delivery.endpoint_id is not None:
            endpoint = await self.repo.endpoint(delivery.endpoint_id)
            if endpoint is None or not endpoint.enabled:
                raise Conflict(
                    "the endpoint was deleted or is disabled; enable it first",
                    code="webhook_disabled",
                )
        delivery.status = "pending"
        delivery.attempts = 0
        delivery.next_attempt_at = now
        delivery.lease_expires_at = None
        delivery.updated_at = now
        await self.session.flush()
        await self.runtime.bus.notify(self.session, "webhooks")
        return record

    async def message(self, workspace_id: str, delivery_id: str) -> WebhookMessage:
        """The message a delivery carries: its exact body as signed and sent."""
        record = await self.delivery(workspace_id, delivery_id)
        message = await self.repo.message(record.delivery.message_id)
        assert message is not None  # deliveries cascade with their message
        return message
