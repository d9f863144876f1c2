"""Members: requests in, resources out."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mediagate.workspaces.models import Member


class MemberView(BaseModel):
    id: str
    name: str
    role: str = Field(description="owner or member")
    permissions: list[str]
    created_at: str

    @classmethod
    def of(cls, member: Member, permissions: list[str] | None = None) -> MemberView:
        return cls(
            id=member.id,
            name=member.name,
            role=member.role,
            permissions=list(member.permissions if permissions is None else permissions),
            created_at=member.created_at.isoformat(),
        )


class MemberList(BaseModel):
    members: list[MemberView]


class MemberUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    permissions: list[str] = Field(
        max_length=20,
        description="The member's whole permission list: access_image_editor, manage_keys, "
        "manage_billing",
    )
