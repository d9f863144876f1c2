"""Provider keys (BYOK): set, list, enable, disable, delete, and resolve for the engines.

Keys are encrypted with a :class:`SecretBox` of their own purpose, derived from the server
secret; only the ciphertext and the last four characters are stored. Like every service it
only flushes; the caller's unit of work commits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.byok.models import ProviderKey
from mediagate.byok.repository import ProviderKeyRepository
from mediagate.clock import Clock
from mediagate.config import Settings
from mediagate.db.database import Database
from mediagate.errors import InvalidRequest, NotFound
from mediagate.providers.engine import KeyResolver
from mediagate.webhooks.secrets import SecretBox, SecretUnreadable

log = logging.getLogger("mediagate.byok")

PURPOSE = "provider-keys"
PROVIDERS = ("openai", "google", "fal", "kie", "xai")
MIN_KEY, MAX_KEY = 8, 4096


class ProviderKeyService:
    """A workspace's own provider keys.

    >>> async with db.writer() as session:  # doctest: +SKIP
    ...     await ProviderKeyService(session, settings).set(ws, "openai", "sk-...")
    """

    def __init__(
        self, session: AsyncSession, settings: Settings, *, clock: Clock | None = None
    ) -> None:
        self.repo = ProviderKeyRepository(session)
        self.box = SecretBox(settings.signing_key, PURPOSE)
        self.clock = clock or Clock()

    async def set(
        self, workspace_id: str, provider: str, api_key: str, *, enabled: bool = True
    ) -> tuple[ProviderKey, bool]:
        """Create or replace the workspace's key for ``provider``; True when created."""
        provider = check_provider(provider)
        api_key = api_key.strip()
        if not MIN_KEY <= len(api_key) <= MAX_KEY or any(c.isspace() for c in api_key):
            raise InvalidRequest(
                f"api_key must be {MIN_KEY}-{MAX_KEY} characters without spaces",
                code="invalid_api_key_format",
            )
        now = self.clock.now()
        key = await self.repo.get(workspace_id, provider)
        if key is None:
            key = await self.repo.add(
                ProviderKey(
                    workspace_id=workspace_id,
                    provider=provider,
                    key_encrypted=self.box.encrypt(api_key),
                    key_last4=api_key[-4:],
                    enabled=enabled,
                    created_at=now,
                    updated_at=now,
                )
            )
            return key, True
        key.key_encrypted = self.box.encrypt(api_key)
        key.key_last4 = api_key[-4:]
        key.enabled = enabled
        key.updated_at = now
        await self.repo.session.flush()
        return key, False

    async def list(self, workspace_id: str) -> Sequence[ProviderKey]:
        return await self.repo.for_workspace(workspace_id)

    async def get(self, workspace_id: str, provider: str) -> ProviderKey:
        provider = check_provider(provider)
        key = await self.repo.get(workspace_id, provider)
        if key is None:
            raise NotFound(f"this workspace has no {provider} key", code="provider_key_not_found")
        return key

    async def set_enabled(self, workspace_id: str, provider: str, enabled: bool) -> ProviderKey:
        key = await self.get(workspace_id, provider)
        if key.enabled != enabled:
            key.enabled = enabled
            key.updated_at = self.clock.now()
            await self.repo.session.flush()
        return key

    async def delete(self, workspace_id: str, provider: str) -> None:
        await self.repo.delete(await self.get(workspace_id, provider))

    async def resolve(self, workspace_id: str, provider: str) -> str | None:
        """The key in clear for an engine to call with; None when absent or disabled."""
        key = await self.repo.get(workspace_id, provider)
        if key is None or not key.enabled:
            return None
        try:
            return self.box.decrypt(key.key_encrypted)
        except SecretUnreadable:
            # The server secret changed since the key was saved: the workspace must set it again.
            log.warning("the %s key of workspace %s cannot be decrypted", provider, workspace_id)
            return None


def check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise InvalidRequest(
            f"unknown provider {provider!r}; choose from {list(PROVIDERS)}",
            code="unknown_provider",
        )
    return provider


def key_resolver(db: Database, settings: Settings) -> KeyResolver:
    """What the provider router asks for a workspace's key: a read of its own per call."""

    async def resolve(workspace_id: str, provider: str) -> str | None:
        async with db.reader() as session:
            return await ProviderKeyService(session, settings).resolve(workspace_id, provider)

    return resolve
