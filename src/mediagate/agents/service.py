"""Saved agent use cases, and how a saved agent shapes a run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.agents.models import SavedAgent
from mediagate.agents.repository import SavedAgentRepository
from mediagate.clock import utcnow
from mediagate.errors import NotFound

EDITABLE = ("name", "instructions", "aspect_ratio", "resolution", "max_steps", "allowed_tools")


@dataclass(frozen=True)
class RunSettings:
    instructions: str
    aspect_ratio: str
    resolution: str
    max_steps: int
    allowed_tools: list[str] | None
    agent_id: str | None


class SavedAgentService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = SavedAgentRepository(session)

    async def create(self, workspace_id: str, values: dict[str, Any]) -> SavedAgent:
        now = utcnow()
        return await self.repo.add(
            SavedAgent(
                workspace_id=workspace_id,
                created_at=now,
                updated_at=now,
                **{k: v for k, v in values.items() if k in EDITABLE},
            )
        )

    async def get(self, workspace_id: str, agent_id: str) -> SavedAgent:
        agent = await self.repo.get(workspace_id, agent_id)
        if agent is None:
            raise NotFound(f"no agent {agent_id!r}", code="agent_not_found", field="agent_id")
        return agent

    async def page(
        self, workspace_id: str, limit: int, offset: int
    ) -> tuple[Sequence[SavedAgent], int]:
        return await self.repo.page(workspace_id, limit, offset)

    async def update(self, workspace_id: str, agent_id: str, values: dict[str, Any]) -> SavedAgent:
        agent = await self.get(workspace_id, agent_id)
        for key, value in values.items():
            if key in EDITABLE:
                setattr(agent, key, value)
        agent.updated_at = utcnow()
        await self.repo.session.flush()
        return agent

    async def delete(self, workspace_id: str, agent_id: str) -> None:
        await self.repo.delete(await self.get(workspace_id, agent_id))


def run_settings(
    request: dict[str, Any], explicit: set[str], agent: SavedAgent | None
) -> RunSettings:
    """What the run uses: the request's own values win; a saved agent fills what the request
    left out and puts its standing instructions before the request's."""

    def pick(name: str) -> Any:
        if name in explicit or agent is None or getattr(agent, name) is None:
            return request[name]
        return getattr(agent, name)

    instructions = request["instructions"]
    if agent is not None and agent.instructions:
        instructions = f"{agent.instructions}\n\n{instructions}"
    return RunSettings(
        instructions=instructions,
        aspect_ratio=pick("aspect_ratio"),
        resolution=pick("resolution"),
        max_steps=pick("max_steps"),
        allowed_tools=agent.allowed_tools if agent else None,
        agent_id=agent.id if agent else None,
    )
