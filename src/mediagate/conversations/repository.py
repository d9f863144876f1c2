"""All SQL about conversations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.conversations.models import Conversation, ConversationMessage


class ConversationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, conversation_id: str) -> Conversation | None:
        return await self.session.scalar(
            select(Conversation).where(
                Conversation.id == conversation_id, Conversation.workspace_id == workspace_id
            )
        )

    async def add(self, conversation: Conversation) -> Conversation:
        self.session.add(conversation)
        await self.session.flush()
        return conversation

    async def recent(self, conversation_id: str, limit: int) -> Sequence[ConversationMessage]:
        rows = (
            await self.session.scalars(
                select(ConversationMessage)
                .where(ConversationMessage.conversation_id == conversation_id)
                .order_by(ConversationMessage.id.desc())
                .limit(limit)
            )
        ).all()
        return list(reversed(rows))

    async def append(
        self, conversation_id: str, messages: list[tuple[str, str]], now: datetime
    ) -> None:
        self.session.add_all(
            ConversationMessage(
                conversation_id=conversation_id, role=role, content=content, created_at=now
            )
            for role, content in messages
        )
        await self.session.execute(
            update(Conversation).where(Conversation.id == conversation_id).values(updated_at=now)
        )
