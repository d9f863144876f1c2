"""All SQL about webhook endpoints, messages, deliveries and attempts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from mediagate.workspaces.models import Workspace

# Built once: constructing a statement costs more than running it.
_ENABLED_OF = select(WebhookEndpoint).where(
    WebhookEndpoint.workspace_id.in_(bindparam("workspaces", expanding=True)),
    WebhookEndpoint.enabled.is_(True),
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

    async def enabled_endpoints_of(
        self, workspace_ids: Collection[str]
    ) -> dict[str, list[WebhookEndpoint]]:
        by_workspace: dict[str, list[WebhookEndpoint]] = {}
        rows = await self.session.scalars(_ENABLED_OF, {"workspaces": list(workspace_ids)})
        for endpoint in rows:
            by_workspace.setdefault(endpoint.workspace_id, []).append(endpoint)
        return by_workspace

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

    # ------------------------------------------------------------------ endpoints

    async def add_endpoint(self, endpoint: WebhookEndpoint) -> WebhookEndpoint:
        self.session.add(endpoint)
        await self.session.flush()
        return endpoint

    async def endpoints(self, workspace_id: str) -> Sequence[WebhookEndpoint]:
        return (
            await self.session.scalars(
                select(WebhookEndpoint)
                .where(WebhookEndpoint.workspace_id == workspace_id)
                .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
            )
        ).all()

    async def endpoint(
        self, endpoint_id: str, workspace_id: str | None = None
    ) -> WebhookEndpoint | None:
        """An endpoint; with ``workspace_id``, only if it belongs to that workspace."""
        query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
        if workspace_id is not None:
            query = query.where(WebhookEndpoint.workspace_id == workspace_id)
        return await self.session.scalar(query)

    async def delete_endpoint(self, endpoint: WebhookEndpoint) -> None:
        await self.session.delete(endpoint)
        await self.session.flush()

    async def disable_endpoint(self, endpoint_id: str, reason: str, now: datetime) -> None:
        await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id)
            .values(enabled=False, disabled_reason=reason[:200], updated_at=now)
            .execution_options(synchronize_session=False)
        )

    # ------------------------------------------------------------------ workspace secret

    async def workspace_secret(self, workspace_id: str) -> str | None:
        """The encrypted default secret (a column read, so never a stale identity-map copy)."""
        return await self.session.scalar(
            select(Workspace.webhook_secret_encrypted).where(Workspace.id == workspace_id)
        )

    async def set_workspace_secret(
        self, workspace_id: str, encrypted: str, *, only_if_missing: bool
    ) -> None:
        # The conditional form lets two processes race to create the first secret: the loser
        # updates nothing (PostgreSQL re-checks the condition after the winner commits).
        query = update(Workspace).where(Workspace.id == workspace_id)
        if only_if_missing:
            query = query.where(Workspace.webhook_secret_encrypted.is_(None))
        await self.session.execute(
            query.values(webhook_secret_encrypted=encrypted).execution_options(
                synchronize_session=False
            )
        )

    # ------------------------------------------------------------------ deliveries

    async def deliveries(
        self,
        workspace_id: str,
        *,
        job_id: str | None = None,
        endpoint_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[tuple[WebhookDelivery, str]]:
        """Deliveries, most recent first, each with its message's event type."""
        query = (
            select(WebhookDelivery, WebhookMessage.event_type)
            .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
            .where(WebhookDelivery.workspace_id == workspace_id)
        )
        if job_id is not None:
            query = query.where(WebhookDelivery.job_id == job_id)
        if endpoint_id is not None:
            query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        return [(row[0], row[1]) for row in await self.session.execute(query.limit(limit))]

    async def delivery(
        self, delivery_id: str, workspace_id: str
    ) -> tuple[WebhookDelivery, str] | None:
        row = (
            await self.session.execute(
                select(WebhookDelivery, WebhookMessage.event_type)
                .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.workspace_id == workspace_id,
                )
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def attempts_of(self, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
        found: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
        if not delivery_ids:
            return found
        rows = await self.session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.attempt, WebhookAttempt.id)
        )
        for row in rows:
            found[row.delivery_id].append(row)
        return found

    async def message(self, message_id: str) -> WebhookMessage | None:
        return await self.session.get(WebhookMessage, message_id)

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int
    ) -> Sequence[WebhookDelivery]:
        """Take due deliveries: pending ones whose time came, and ``delivering`` ones whose
        dispatcher vanished (lease over). PostgreSQL skips rows another dispatcher holds; on
        SQLite the write transaction (BEGIN IMMEDIATE) already makes this exclusive.

        Each claim counts as an attempt, so a delivery that keeps crashing its dispatcher still
        runs out of attempts."""
        rows = (
            await self.session.scalars(
                select(WebhookDelivery)
                .where(
                    or_(
                        and_(
                            WebhookDelivery.status == "pending",
                            WebhookDelivery.next_attempt_at <= now,
                        ),
                        and_(
                            WebhookDelivery.status == "delivering",
                            WebhookDelivery.lease_expires_at <= now,
                        ),
                    )
                )
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            row.status = "delivering"
            row.attempts += 1
            row.lease_expires_at = lease_until
            row.updated_at = now
        await self.session.flush()
        return rows

    async def finish_attempt(
        self, delivery_id: str, attempts: int, lease: datetime, **values: Any
    ) -> bool:
        """Write an attempt's outcome only while our claim still holds: the attempt count and
        lease we set act as a fencing token, so a dispatcher whose lease ran out and whose
        delivery was claimed again cannot overwrite the newer outcome."""
        result = await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == "delivering",
                WebhookDelivery.attempts == attempts,
                WebhookDelivery.lease_expires_at == lease,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def add_attempt(self, attempt: WebhookAttempt) -> None:
        # Attempts are numbered across redeliveries, so the log reads as one history.
        previous = await self.session.scalar(
            select(func.max(WebhookAttempt.attempt)).where(
                WebhookAttempt.delivery_id == attempt.delivery_id
            )
        )
        attempt.attempt = (previous or 0) + 1
        self.session.add(attempt)
        await self.session.flush()
