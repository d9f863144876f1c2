"""Chat use cases: pick the engine, keep the history, count the daily chat quota.

A message is counted when it is accepted and given back if the engine fails, so a failed
reply costs nothing. The last ``HISTORY`` messages of a conversation go to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mediagate.auth.principal import Principal
from mediagate.chat.builtin import BuiltinChat
from mediagate.chat.engines import ChatEngine, ChatMessage
from mediagate.chat.knowledge import Route
from mediagate.chat.openai_compatible import OpenAIChat
from mediagate.conversations.models import Conversation
from mediagate.conversations.repository import ConversationRepository
from mediagate.errors import NotFound, Unavailable
from mediagate.plans.quotas import QuotaService

if TYPE_CHECKING:
    from mediagate.runtime import Runtime

HISTORY = 20


@dataclass(frozen=True)
class Turn:
    conversation_id: str
    messages: list[ChatMessage]
    quota: dict[str, Any] | None


def chat_engine(
    runtime: Runtime, principal: Principal, routes: list[Route], base_url: str
) -> ChatEngine:
    """Sandbox keys talk to the builtin assistant; live keys to the configured chat model."""
    if principal.sandbox:
        return BuiltinChat(runtime.catalog, routes, base_url=base_url)
    settings = runtime.settings
    if not (settings.chat_base_url and settings.chat_model):
        raise Unavailable(
            "no chat model is configured on this server for live keys", code="chat_unavailable"
        )
    return OpenAIChat(
        base_url=settings.chat_base_url, api_key=settings.chat_api_key, model=settings.chat_model
    )


async def begin_turn(
    runtime: Runtime, principal: Principal, message: str, conversation_id: str | None
) -> Turn:
    """Count the message against the quota and gather the conversation so far."""
    now = runtime.clock.now()
    async with runtime.db.writer() as session:
        repo = ConversationRepository(session)
        if conversation_id is None:
            conversation = await repo.add(
                Conversation(workspace_id=principal.workspace_id, created_at=now, updated_at=now)
            )
        else:
            found = await repo.get(principal.workspace_id, conversation_id)
            if found is None:
                raise NotFound(
                    f"no conversation {conversation_id!r}", code="conversation_not_found"
                )
            conversation = found
        charge = await QuotaService(session, runtime.catalog).consume(
            principal.workspace_id, principal.plan, "chat", 1, now
        )
        history = [
            ChatMessage(m.role, m.content)  # type: ignore[arg-type]
            for m in await repo.recent(conversation.id, HISTORY)
        ]
    return Turn(
        conversation.id,
        [*history, ChatMessage("user", message)],
        charge.as_dict() if charge else None,
    )


async def end_turn(runtime: Runtime, turn: Turn, reply: str) -> None:
    async with runtime.db.writer() as session:
        await ConversationRepository(session).append(
            turn.conversation_id,
            [("user", turn.messages[-1].content), ("assistant", reply)],
            runtime.clock.now(),
        )


async def abandon_turn(runtime: Runtime, principal: Principal, turn: Turn) -> None:
    async with runtime.db.writer() as session:
        await QuotaService(session, runtime.catalog).give_back(principal.workspace_id, turn.quota)
