"""All SQL about webhook endpoints, messages, deliveries and attempts."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)


class WebhookRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def enabled_endpoints(self, workspace_id: str) -> Sequence[WebhookEndpoint]:
        return (
            await self.session.scalars(
                select(WebhookEndpoint).where(
                    WebhookEndpoint.workspace_id == workspace_id, WebhookEndpoint.enabled.is_(True)
                )
            )
        ).all()

    async def add_message(self, message: WebhookMessage, deliveries: list[WebhookDelivery]) -> None:
        self.session.add(message)
        await self.session.flush()
        self.session.add_all(deliveries)
        await self.session.flush()

    async def attempts(self, delivery_id: str) -> Sequence[WebhookAttempt]:
        return (
            await self.session.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.delivery_id == delivery_id)
                .order_by(WebhookAttempt.attempt)
            )
        ).all()
