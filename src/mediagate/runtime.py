"""The process-wide objects every request and worker shares, built once from Settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from mediagate.assets.storage import LocalStorage, Storage
from mediagate.catalog.loader import load_catalog
from mediagate.catalog.schemas import Catalog
from mediagate.clock import Clock
from mediagate.config import Settings
from mediagate.db.database import Database
from mediagate.engines.builtin import BuiltinEngine
from mediagate.engines.registry import EngineRegistry


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: Catalog
    storage: Storage
    engines: EngineRegistry
    clock: Clock = field(default_factory=Clock)
    # Wakes idle in-process workers when a job is queued, instead of waiting for the next poll.
    job_queued: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        return cls(
            settings=settings,
            db=Database(settings.resolved_database_url),
            catalog=load_catalog(settings.catalog_path),
            storage=LocalStorage(settings.storage_dir),
            engines=EngineRegistry([BuiltinEngine(max_pixels=settings.max_image_pixels)]),
            clock=clock or Clock(),
        )

    def notify_job_queued(self) -> None:
        self.job_queued.set()

    async def close(self) -> None:
        await self.db.dispose()
