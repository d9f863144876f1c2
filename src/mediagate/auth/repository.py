"""All SQL about API keys."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.auth.models import ApiKey
from mediagate.workspaces.models import Member, Workspace


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        await self.session.flush()
        return key

    async def with_workspace_by_hash(
        self, key_hash: str
    ) -> tuple[ApiKey, Workspace, Member] | None:
        """The key with its workspace and member, in one query: every request makes it."""
        row = (
            await self.session.execute(
                select(ApiKey, Workspace, Member)
                .join(Workspace, Workspace.id == ApiKey.workspace_id)
                .join(Member, Member.id == ApiKey.member_id)
                .where(ApiKey.key_hash == key_hash)
            )
        ).first()
        return (row[0], row[1], row[2]) if row else None

    async def for_workspace(self, workspace_id: str) -> Sequence[ApiKey]:
        return (
            await self.session.scalars(
                select(ApiKey)
                .where(ApiKey.workspace_id == workspace_id)
                .order_by(ApiKey.created_at)
            )
        ).all()

    async def by_id_or_prefix(self, workspace_id: str, ident: str) -> ApiKey | None:
        return await self.session.scalar(
            select(ApiKey).where(
                ApiKey.workspace_id == workspace_id,
                (ApiKey.id == ident) | (ApiKey.prefix == ident),
            )
        )
