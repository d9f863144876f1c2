"""All SQL about saved avatars."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.avatars.models import SavedAvatar


class SavedAvatarRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, avatar: SavedAvatar) -> SavedAvatar:
        self.session.add(avatar)
        await self.session.flush()
        return avatar

    async def get(self, workspace_id: str, avatar_id: str) -> SavedAvatar | None:
        return await self.session.scalar(
            select(SavedAvatar).where(
                SavedAvatar.id == avatar_id, SavedAvatar.workspace_id == workspace_id
            )
        )

    async def page(
        self, workspace_id: str, limit: int, offset: int
    ) -> tuple[Sequence[SavedAvatar], int]:
        where = SavedAvatar.workspace_id == workspace_id
        total = await self.session.scalar(select(func.count()).where(where))
        rows = (
            await self.session.scalars(
                select(SavedAvatar)
                .where(where)
                .order_by(SavedAvatar.created_at.desc(), SavedAvatar.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return rows, int(total or 0)
