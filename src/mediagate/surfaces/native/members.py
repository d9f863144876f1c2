"""Members and their permissions: ``/v1/members``, scope ``admin`` (``/v1/members/me`` any)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mediagate.surfaces.deps import PrincipalDep, RuntimeDep
from mediagate.surfaces.native.envelope import Envelope, ok
from mediagate.workspaces import schemas as s
from mediagate.workspaces.service import MemberService

router = APIRouter(tags=["members"])


@router.get(
    "/v1/members",
    response_model=Envelope[s.MemberList],
    summary="The workspace's members with their roles and permissions",
)
async def list_members(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    principal.require("admin")
    async with runtime.db.reader() as session:
        members = await MemberService(session).list(principal.workspace_id)
    return ok(s.MemberList(members=[s.MemberView.of(m) for m in members]).model_dump())


@router.get(
    "/v1/members/me",
    response_model=Envelope[s.MemberView],
    summary="The member behind the calling key, with the permissions this request carries",
)
async def me(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.db.reader() as session:
        member = await MemberService(session).get(principal.workspace_id, principal.member_id)
    return ok(s.MemberView.of(member, sorted(principal.permissions)).model_dump())


@router.patch(
    "/v1/members/{member_id}",
    response_model=Envelope[s.MemberView],
    summary="Replace a member's permissions",
)
async def update_member(
    member_id: str, body: s.MemberUpdate, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal.require("admin")
    async with runtime.db.writer() as session:
        member = await MemberService(session).set_permissions(
            principal.workspace_id, member_id, body.permissions
        )
    return ok(s.MemberView.of(member).model_dump())
