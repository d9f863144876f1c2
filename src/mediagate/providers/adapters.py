"""The provider adapters this server ships; a new provider is one module added here."""

from __future__ import annotations

from mediagate.providers.base import Adapter
from mediagate.providers.fal import FalAdapter
from mediagate.providers.google import GoogleAdapter
from mediagate.providers.kie import KieAdapter
from mediagate.providers.openai import OpenAIAdapter
from mediagate.providers.xai import XaiAdapter


def all_adapters() -> list[Adapter]:
    return [FalAdapter(), GoogleAdapter(), KieAdapter(), OpenAIAdapter(), XaiAdapter()]
