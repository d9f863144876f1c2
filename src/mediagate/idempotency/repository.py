"""All SQL about idempotency records."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
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

    async def find_many(
        self, keys: Collection[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], IdempotencyRecord]:
        """The records of many ``(workspace, surface, key)`` triples, in one query."""
        if not keys:
            return {}
        rows = await self.session.scalars(
            select(IdempotencyRecord).where(
                IdempotencyRecord.workspace_id.in_({w for w, _, _ in keys}),
                IdempotencyRecord.key.in_({k for _, _, k in keys}),
            )
        )
        found = {(r.workspace_id, r.surface, r.key): r for r in rows}
        return {triple: found[triple] for triple in keys if triple in found}

    async def insert_many(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(IdempotencyRecord), rows)

    async def delete_ids(self, ids: Collection[str]) -> None:
        if ids:
            await self.session.execute(
                delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(ids))
            )

    async def add(self, record: IdempotencyRecord) -> None:
        self.session.add(record)
        await self.session.flush()

    async def settle(self, record_id: str, **values: Any) -> bool:
        """Turn our in-flight record into a completed one; False if it is no longer ours."""
        result = await self.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id, IdempotencyRecord.state == "in_flight")
            .values(state="completed", **values)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    async def remove(self, record_id: str) -> None:
        await self.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == record_id, IdempotencyRecord.state == "in_flight"
            )
        )

    async def purge_expired(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.expires_at < now)
        )
        return result.rowcount  # type: ignore[attr-defined, no-any-return]
