"""The process-wide objects every request and worker shares, built once from Settings."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from mediagate.assets.storage import LocalStorage, Storage
from mediagate.byok.service import key_resolver
from mediagate.catalog.loader import load_catalog
from mediagate.catalog.schemas import Catalog
from mediagate.clock import Clock
from mediagate.config import Settings
from mediagate.db.database import Database
from mediagate.engines.agent import AgentEngine
from mediagate.engines.avatar import AvatarEngine
from mediagate.engines.builtin import BuiltinEngine
from mediagate.engines.builtin_music import BuiltinMusicEngine
from mediagate.engines.builtin_video import BuiltinVideoEngine
from mediagate.engines.local_diffusers import local_engines
from mediagate.engines.registry import EngineRegistry
from mediagate.events.bus import LocalBus, bus_for
from mediagate.jobs.batch import SubmitBatcher
from mediagate.plans.ratelimit import RequestLimiter
from mediagate.providers.adapters import all_adapters
from mediagate.providers.engine import ProviderRouter


class StreamSlots:
    """Counts open event streams so that one process never holds more than ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def acquire(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: Catalog
    storage: Storage
    engines: EngineRegistry
    bus: LocalBus = field(default_factory=LocalBus)
    clock: Clock = field(default_factory=Clock)
    streams: StreamSlots = field(default_factory=lambda: StreamSlots(1000))
    limiter: RequestLimiter = field(default_factory=RequestLimiter)
    providers: ProviderRouter | None = None
    submits: SubmitBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.submits = SubmitBatcher(self)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> Runtime:
        clock = clock or Clock()
        db = Database(settings.resolved_database_url)
        providers = ProviderRouter(
            settings, all_adapters(), clock=clock, byok_keys=key_resolver(db, settings)
        )
        return cls(
            settings=settings,
            db=db,
            catalog=load_catalog(settings.catalog_path),
            storage=LocalStorage(settings.storage_dir),
            engines=EngineRegistry(
                [
                    BuiltinEngine(max_pixels=settings.max_image_pixels),
                    BuiltinVideoEngine(max_pixels=settings.max_image_pixels),
                    BuiltinMusicEngine(),
                    AvatarEngine(max_pixels=settings.max_image_pixels),
                    AgentEngine(settings),
                    *providers.engines(),
                    *local_engines(settings),
                ]
            ),
            bus=bus_for(settings.resolved_database_url, settings.redis_url),
            clock=clock,
            streams=StreamSlots(settings.max_streams_per_process),
            limiter=RequestLimiter(settings.redis_url),
            providers=providers,
        )

    async def start(self) -> None:
        await self.bus.start()
        self._maintenance = asyncio.create_task(self.db.checkpoint_forever())

    async def close(self) -> None:
        await self.submits.close()
        maintenance = getattr(self, "_maintenance", None)
        if maintenance is not None:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
        await self.bus.stop()
        await self.limiter.close()
        if self.providers is not None:
            await self.providers.close()
        await self.db.dispose()
