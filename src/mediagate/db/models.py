"""Imports every model so that the metadata (and Alembic) sees all tables."""

from mediagate.agents.models import SavedAgent
from mediagate.assets.models import Asset
from mediagate.auth.models import ApiKey, AuthEpoch
from mediagate.avatars.models import SavedAvatar
from mediagate.byok.models import ProviderKey
from mediagate.conversations.models import Conversation, ConversationMessage
from mediagate.credits.models import CreditAccount, LedgerEntry
from mediagate.db.base import Base
from mediagate.editor.models import Character, EditorImage, Style
from mediagate.idempotency.models import IdempotencyRecord
from mediagate.jobs.models import Job, JobEvent
from mediagate.plans.models import QuotaUsage
from mediagate.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from mediagate.workspaces.models import Member, Workspace

__all__ = [
    "ApiKey",
    "Asset",
    "AuthEpoch",
    "Base",
    "Character",
    "Conversation",
    "ConversationMessage",
    "CreditAccount",
    "EditorImage",
    "IdempotencyRecord",
    "Job",
    "JobEvent",
    "LedgerEntry",
    "Member",
    "ProviderKey",
    "QuotaUsage",
    "SavedAgent",
    "SavedAvatar",
    "Style",
    "Workspace",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
]
