"""Provider keys (BYOK): requests in, resources out. A key is never part of a response."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mediagate.byok.models import ProviderKey


class ProviderKeySet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: str = Field(
        min_length=8, max_length=4096, description="The provider's API key; stored encrypted"
    )
    enabled: bool = Field(True, description="Whether jobs may use the key")


class ProviderKeyUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


class ProviderKeyView(BaseModel):
    provider: str
    last4: str = Field(description="The key's last four characters, to tell keys apart")
    enabled: bool
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, key: ProviderKey) -> ProviderKeyView:
        return cls(
            provider=key.provider,
            last4=key.key_last4,
            enabled=key.enabled,
            created_at=key.created_at.isoformat(),
            updated_at=key.updated_at.isoformat(),
        )


class ProviderKeyList(BaseModel):
    provider_keys: list[ProviderKeyView]


class ProviderKeyDeleted(BaseModel):
    provider: str
    deleted: bool = True
