"""All SQL about quota usage."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.plans.models import QuotaUsage

_USED_ON = (
    select(QuotaUsage.workspace_id, QuotaUsage.product, QuotaUsage.used)
    .where(
        QuotaUsage.workspace_id.in_(bindparam("workspaces", expanding=True)),
        QuotaUsage.day == bindparam("day"),
    )
    .with_for_update()
)


class QuotaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        bind = session.get_bind()
        self.postgres = bind.dialect.name == "postgresql"

    async def consume(
        self, workspace_id: str, product: str, day: str, amount: int, limit: int
    ) -> bool:
        """Add ``amount`` to the day's use unless that would pass ``limit``: one atomic
        upsert, so concurrent requests can never overshoot."""
        if amount > limit:
            return False
        dialect = postgresql if self.postgres else sqlite
        stmt = dialect.insert(QuotaUsage).values(
            workspace_id=workspace_id, product=product, day=day, used=amount
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["workspace_id", "product", "day"],
            set_={"used": QuotaUsage.used + amount},
            where=QuotaUsage.used + amount <= limit,
        )
        result = await self.session.execute(stmt)
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def give_back(self, workspace_id: str, product: str, day: str, amount: int) -> None:
        await self.session.execute(
            update(QuotaUsage)
            .where(
                QuotaUsage.workspace_id == workspace_id,
                QuotaUsage.product == product,
                QuotaUsage.day == day,
            )
            # SQLite's two-argument max() is PostgreSQL's greatest().
            .values(
                used=(func.greatest if self.postgres else func.max)(QuotaUsage.used - amount, 0)
            )
        )

    async def used_on(self, workspace_ids: Collection[str], day: str) -> dict[tuple[str, str], int]:
        """``(workspace, product) -> used`` on ``day`` for several workspaces, locked until the
        transaction ends where the database has row locks."""
        rows = await self.session.execute(_USED_ON, {"workspaces": list(workspace_ids), "day": day})
        return {(workspace_id, product): used for workspace_id, product, used in rows}

    async def used(self, workspace_id: str, day: str) -> dict[str, int]:
        rows = await self.session.execute(
            select(QuotaUsage.product, QuotaUsage.used).where(
                QuotaUsage.workspace_id == workspace_id, QuotaUsage.day == day
            )
        )
        return {product: used for product, used in rows}
