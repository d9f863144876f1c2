"""All SQL about idempotency records."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.idempotency.models import IdempotencyRecord

_RECORDS = cast(Table, IdempotencyRecord.__table__)
# Built once (constructing a statement costs more than running it). All three columns of the
# unique index are constrained, so that it is searched rather than scanned.
_FIND_MANY = select(_RECORDS).where(
    _RECORDS.c.workspace_id.in_(bindparam("workspaces", expanding=True)),
    _RECORDS.c.surface.in_(bindparam("surfaces", expanding=True)),
    _RECORDS.c.key.in_(bindparam("keys", expanding=True)),
)


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
    ) -> dict[tuple[str, str, str], Row[Any]]:
        """The records (plain rows) of many ``(workspace, surface, key)`` triples, in one
        query."""
        if not keys:
            return {}
        connection = await self.session.connection()
        rows = await connection.execute(
            _FIND_MANY,
            {
                "workspaces": list({w for w, _, _ in keys}),
                "surfaces": list({s for _, s, _ in keys}),
                "keys": list({k for _, _, k in keys}),
            },
        )
        found = {(r.workspace_id, r.surface, r.key): r for r in rows}
        return {triple: found[triple] for triple in keys if triple in found}

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
