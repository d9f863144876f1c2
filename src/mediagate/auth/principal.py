"""Who is calling: the resolved identity that every service receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from mediagate.errors import Forbidden

SCOPES = ("generate", "image_agent", "avatars", "chat", "image_editor", "webhooks", "admin")
MODES = ("live", "sandbox")
# What a member may do, whichever key it calls with (scopes limit the key; these the person).
PERMISSIONS = ("access_image_editor", "manage_keys", "manage_billing")


@dataclass(frozen=True)
class Principal:
    """The caller: a workspace, the member behind the key, the key's scopes and the
    member's permissions.

    >>> p = Principal("ws", "free", "m", frozenset({"chat"}), "live")
    >>> p.require_permission("access_image_editor")  # doctest: +SKIP
    Traceback (most recent call last): ... Forbidden
    """

    workspace_id: str
    plan: str
    member_id: str
    scopes: frozenset[str]
    mode: str
    api_key_id: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)

    @property
    def sandbox(self) -> bool:
        return self.mode == "sandbox"

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(
                f"this key lacks the {scope!r} scope", code="missing_scope", scope=scope
            )

    def require_permission(self, permission: str) -> None:
        if permission not in self.permissions:
            raise Forbidden(
                f"this key's member lacks the {permission!r} permission",
                code="missing_permission",
                permission=permission,
            )
