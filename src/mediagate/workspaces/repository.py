"""All SQL about workspaces and members."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.workspaces.models import Member, Workspace


class WorkspaceRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_name(self, name: str) -> Workspace | None:
        return await self.session.scalar(select(Workspace).where(Workspace.name == name))

    async def by_id(self, workspace_id: str) -> Workspace | None:
        return await self.session.get(Workspace, workspace_id)

    async def all(self) -> Sequence[Workspace]:
        return (await self.session.scalars(select(Workspace).order_by(Workspace.name))).all()

    async def add(self, workspace: Workspace) -> Workspace:
        self.session.add(workspace)
        await self.session.flush()
        return workspace

    async def add_member(self, member: Member) -> Member:
        self.session.add(member)
        await self.session.flush()
        return member

    async def owner(self, workspace_id: str) -> Member | None:
        return await self.session.scalar(
            select(Member)
            .where(Member.workspace_id == workspace_id, Member.role == "owner")
            .order_by(Member.created_at)
            .limit(1)
        )

    async def member_by_subject(self, subject: str) -> Member | None:
        return await self.session.scalar(select(Member).where(Member.external_subject == subject))

    async def member(self, member_id: str) -> Member | None:
        return await self.session.get(Member, member_id)

    async def member_with_workspace(
        self, member_id: str, workspace_id: str
    ) -> tuple[Member, Workspace] | None:
        row = (
            await self.session.execute(
                select(Member, Workspace)
                .join(Workspace, Workspace.id == Member.workspace_id)
                .where(Member.id == member_id, Member.workspace_id == workspace_id)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def members(self, workspace_id: str) -> Sequence[Member]:
        return (
            await self.session.scalars(
                select(Member)
                .where(Member.workspace_id == workspace_id)
                .order_by(Member.created_at, Member.id)
            )
        ).all()

    async def members_by_id_or_name(self, workspace_id: str, ident: str) -> Sequence[Member]:
        return (
            await self.session.scalars(
                select(Member).where(
                    Member.workspace_id == workspace_id,
                    (Member.id == ident) | (Member.name == ident),
                )
            )
        ).all()
