"""The provider adapters this server ships; a new provider is one module added here."""

from __future__ import annotations

from mediagate.providers.base import Adapter
from mediagate.providers.fal import FalAdapter


def all_adapters() -> list[Adapter]:
    return [FalAdapter()]
