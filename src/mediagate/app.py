"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from mediagate import __version__
from mediagate.config import Settings
from mediagate.jobs.worker import Worker
from mediagate.runtime import Runtime
from mediagate.surfaces import health
from mediagate.surfaces.errors import ErrorRenderers
from mediagate.surfaces.native import assets, docs, identity, jobs, routes
from mediagate.surfaces.native.envelope import render_error


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. The database must already be migrated (``mediagate db upgrade``)."""
    runtime = runtime or Runtime.from_settings(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        stop = asyncio.Event()
        worker_task = None
        if runtime.settings.embedded_workers:
            worker_task = asyncio.create_task(Worker(runtime).run_until(stop))
        try:
            yield
        finally:
            stop.set()
            if worker_task is not None:
                await worker_task
            await runtime.close()

    app = FastAPI(
        title="Mediagate",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        description="Self-hosted generative-media API server.",
    )
    app.state.runtime = runtime
    ErrorRenderers(fallback=render_error).install(app)
    for module in (health, routes, jobs, identity, assets, docs):
        app.include_router(module.router)
    return app
