"""Use cases for workspaces and their members."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.catalog.schemas import Catalog
from mediagate.credits.service import CreditService
from mediagate.errors import Conflict, InvalidRequest, NotFound
from mediagate.workspaces.models import Member, Workspace
from mediagate.workspaces.repository import WorkspaceRepository

OWNER_PERMISSIONS = ["access_image_editor", "manage_keys", "manage_billing"]


class WorkspaceService:
    def __init__(self, session: AsyncSession, catalog: Catalog) -> None:
        self.repo = WorkspaceRepository(session)
        self.credits = CreditService(session)
        self.catalog = catalog

    async def create(
        self,
        name: str,
        *,
        plan: str = "free",
        credits: int = 0,
        owner_name: str = "owner",
        owner_subject: str | None = None,
    ) -> tuple[Workspace, Member]:
        """Create a workspace with its owner and, when asked, a one-time credit grant."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidRequest("workspace name must be 1-100 characters")
        if plan not in self.catalog.plans:
            raise InvalidRequest(f"unknown plan {plan!r}; plans: {sorted(self.catalog.plans)}")
        if await self.repo.by_name(name):
            raise Conflict(f"workspace {name!r} already exists", code="workspace_exists")
        workspace = await self.repo.add(Workspace(name=name, plan=plan))
        owner = await self.repo.add_member(
            Member(
                workspace_id=workspace.id,
                name=owner_name,
                role="owner",
                permissions=list(OWNER_PERMISSIONS),
                external_subject=owner_subject,
            )
        )
        await self.credits.open_account(workspace.id)
        if credits:
            await self.credits.grant(
                workspace.id, credits, key=f"initial-grant:{workspace.id}", note="initial grant"
            )
        return workspace, owner

    async def get_by_name(self, name: str) -> Workspace:
        workspace = await self.repo.by_name(name)
        if workspace is None:
            raise NotFound(f"no workspace named {name!r}", code="workspace_not_found")
        return workspace
