"""All SQL about saved agents."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.agents.models import SavedAgent


class SavedAgentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, agent: SavedAgent) -> SavedAgent:
        self.session.add(agent)
        await self.session.flush()
        return agent

    async def get(self, workspace_id: str, agent_id: str) -> SavedAgent | None:
        return await self.session.scalar(
            select(SavedAgent).where(
                SavedAgent.id == agent_id, SavedAgent.workspace_id == workspace_id
            )
        )

    async def page(
        self, workspace_id: str, limit: int, offset: int
    ) -> tuple[Sequence[SavedAgent], int]:
        where = SavedAgent.workspace_id == workspace_id
        total = await self.session.scalar(select(func.count()).where(where))
        rows = (
            await self.session.scalars(
                select(SavedAgent)
                .where(where)
                .order_by(SavedAgent.created_at.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return rows, int(total or 0)

    async def delete(self, agent: SavedAgent) -> None:
        await self.session.delete(agent)
        await self.session.flush()
