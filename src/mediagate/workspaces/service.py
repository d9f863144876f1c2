"""Use cases for workspaces and their members."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.auth.principal import PERMISSIONS
from mediagate.catalog.schemas import Catalog
from mediagate.credits.service import CreditService
from mediagate.errors import Conflict, InvalidRequest, NotFound
from mediagate.workspaces.models import Member, Workspace
from mediagate.workspaces.repository import WorkspaceRepository

OWNER_PERMISSIONS = ["access_image_editor", "manage_keys", "manage_billing"]


def parse_permissions(permissions: Iterable[str]) -> list[str]:
    """Known permission names, deduplicated in a stable order; anything unknown is refused."""
    chosen = [p.strip() for p in permissions if p.strip()]
    unknown = sorted(set(chosen) - set(PERMISSIONS))
    if unknown:
        raise InvalidRequest(
            f"unknown permissions {unknown}; choose from {list(PERMISSIONS)}",
            code="unknown_permission",
            permissions=unknown,
        )
    return sorted(set(chosen), key=PERMISSIONS.index)


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


class MemberService:
    """A workspace's members and what each may do.

    >>> async with db.writer() as session:  # doctest: +SKIP
    ...     await MemberService(session).grant(workspace_id, "bot", "access_image_editor")
    """

    def __init__(self, session: AsyncSession) -> None:
        self.repo = WorkspaceRepository(session)
        self.session = session

    async def list(self, workspace_id: str) -> Sequence[Member]:
        return await self.repo.members(workspace_id)

    async def add(self, workspace_id: str, name: str, *, permissions: Iterable[str] = ()) -> Member:
        """A plain member (role ``member``); it has only the permissions given."""
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidRequest("member name must be 1-200 characters")
        chosen = parse_permissions(permissions)
        if any(m.name == name for m in await self.repo.members_by_id_or_name(workspace_id, name)):
            raise Conflict(f"member {name!r} already exists", code="member_exists")
        return await self.repo.add_member(
            Member(workspace_id=workspace_id, name=name, role="member", permissions=chosen)
        )

    async def get(self, workspace_id: str, member_id: str) -> Member:
        member = await self.repo.member(member_id)
        if member is None or member.workspace_id != workspace_id:
            raise NotFound(f"no member {member_id!r} in this workspace", code="member_not_found")
        return member

    async def find(self, workspace_id: str, ident: str) -> Member:
        """By id or by name; a name that several members share must be given as an id."""
        found = await self.repo.members_by_id_or_name(workspace_id, ident)
        by_id = [m for m in found if m.id == ident]
        if by_id:
            return by_id[0]
        if not found:
            raise NotFound(f"no member {ident!r} in this workspace", code="member_not_found")
        if len(found) > 1:
            raise Conflict(
                f"several members are named {ident!r}; give the member's id",
                code="ambiguous_member",
            )
        return found[0]

    async def set_permissions(
        self, workspace_id: str, member_id: str, permissions: Iterable[str]
    ) -> Member:
        member = await self.get(workspace_id, member_id)
        return await self._save(member, parse_permissions(permissions))

    async def grant(self, workspace_id: str, ident: str, permission: str) -> Member:
        member = await self.find(workspace_id, ident)
        return await self._save(member, parse_permissions([*member.permissions, permission]))

    async def revoke(self, workspace_id: str, ident: str, permission: str) -> Member:
        gone = set(parse_permissions([permission]))
        member = await self.find(workspace_id, ident)
        return await self._save(member, [p for p in member.permissions if p not in gone])

    async def _save(self, member: Member, permissions: Sequence[str]) -> Member:
        member.permissions = list(permissions)  # a new list, so that the JSON column is saved
        await self.session.flush()
        return member
