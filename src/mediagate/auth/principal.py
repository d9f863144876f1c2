"""Who is calling: the resolved identity that every service receives."""

from __future__ import annotations

from dataclasses import dataclass

from mediagate.errors import Forbidden

SCOPES = ("generate", "image_agent", "avatars", "chat", "image_editor", "webhooks", "admin")
MODES = ("live", "sandbox")


@dataclass(frozen=True)
class Principal:
    workspace_id: str
    plan: str
    member_id: str
    scopes: frozenset[str]
    mode: str
    api_key_id: str | None = None

    @property
    def sandbox(self) -> bool:
        return self.mode == "sandbox"

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise Forbidden(
                f"this key lacks the {scope!r} scope", code="missing_scope", scope=scope
            )
