"""All SQL about a workspace's provider keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.byok.models import ProviderKey


class ProviderKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, provider: str) -> ProviderKey | None:
        return await self.session.scalar(
            select(ProviderKey).where(
                ProviderKey.workspace_id == workspace_id, ProviderKey.provider == provider
            )
        )

    async def for_workspace(self, workspace_id: str) -> Sequence[ProviderKey]:
        return (
            await self.session.scalars(
                select(ProviderKey)
                .where(ProviderKey.workspace_id == workspace_id)
                .order_by(ProviderKey.provider)
            )
        ).all()

    async def add(self, key: ProviderKey) -> ProviderKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def delete(self, key: ProviderKey) -> None:
        await self.session.delete(key)
        await self.session.flush()
