"""The chat engine protocol: messages in, a reply (whole or streamed) out, and its two failures.

A surface maps :class:`ChatUnavailable` (the engine or the provider behind it cannot answer) to
502 and :class:`ChatRejected` (the provider refused the request: bad request, bad key) to the
status it chooses; :class:`ChatRateLimited` is a :class:`ChatUnavailable` that also says when to
come back, for a surface that wants to answer 429/503 with ``Retry-After`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class ChatMessage:
    """One turn of a conversation.

    >>> ChatMessage("user", "How much is veo3?")
    ChatMessage(role='user', content='How much is veo3?')
    """

    role: Role
    content: str


class ChatEngine(Protocol):
    """Answers a conversation. ``"".join(stream(m))`` is what ``reply(m)`` returns.

    Both raise :class:`ChatUnavailable` or :class:`ChatRejected`; ``stream`` may raise them from
    the iterator after some text was already yielded.
    """

    name: str

    async def reply(self, messages: list[ChatMessage]) -> str: ...

    def stream(self, messages: list[ChatMessage]) -> AsyncIterator[str]: ...


class ChatError(Exception):
    """Base of the chat failures; ``message`` is safe to show (no keys, no stack)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ChatUnavailable(ChatError):
    """The engine cannot answer now: connection refused, timeout, 5xx, a malformed or cut-off
    response. ``status`` is the provider's HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ChatRateLimited(ChatUnavailable):
    """The provider answered 429. ``retry_after`` is its ``Retry-After`` in seconds, if sent."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class ChatRejected(ChatError):
    """The provider refused the request (a 4xx other than 408/409/425/429): ``status`` is its
    HTTP status and ``message`` carries the provider's own explanation."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status
