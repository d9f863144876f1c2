"""Chat engines: the builtin offline assistant and any OpenAI-compatible chat server.

>>> from mediagate.chat import BuiltinChat, ChatMessage, OpenAIChat
"""

from mediagate.chat.builtin import BuiltinChat
from mediagate.chat.engines import (
    ChatEngine,
    ChatError,
    ChatMessage,
    ChatRateLimited,
    ChatRejected,
    ChatUnavailable,
)
from mediagate.chat.knowledge import routes_from_openapi
from mediagate.chat.openai_compatible import OpenAIChat

__all__ = [
    "BuiltinChat",
    "ChatEngine",
    "ChatError",
    "ChatMessage",
    "ChatRateLimited",
    "ChatRejected",
    "ChatUnavailable",
    "OpenAIChat",
    "routes_from_openapi",
]
