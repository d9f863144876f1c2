"""All SQL about idempotency records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.idempotency.models import IdempotencyRecord


class IdempotencyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def find(self, workspace_id: str, surface: str, key: str) -> IdempotencyRecord | None:
        return await self.session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.workspace_id == workspace_id,
                IdempotencyRecord.surface == surface,
                IdempotencyRecord.key == key,
            )
        )

    async def add(self, record: IdempotencyRecord) -> None:
        self.session.add(record)
        await self.session.flush()

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
