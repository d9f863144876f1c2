"""The ASGI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI

from mediagate import __version__
from mediagate.assets.uploads import base64_size
from mediagate.config import Settings
from mediagate.jobs.worker import Worker
from mediagate.plans.ratelimit import RateLimitHeaders
from mediagate.runtime import Runtime
from mediagate.surfaces import health
from mediagate.surfaces.avatars import errors as avatars_errors
from mediagate.surfaces.avatars import routes as avatars
from mediagate.surfaces.avatars import schemas as avatars_schemas
from mediagate.surfaces.deps import document_bearer_auth
from mediagate.surfaces.errors import ErrorRenderers, document_errors
from mediagate.surfaces.generate_chat import errors as generate_chat_errors
from mediagate.surfaces.generate_chat import routes as generate_chat
from mediagate.surfaces.image_agent import errors as image_agent_errors
from mediagate.surfaces.image_agent import routes as image_agent
from mediagate.surfaces.image_agent import schemas as image_agent_schemas
from mediagate.surfaces.image_editor import errors as image_editor_errors
from mediagate.surfaces.image_editor import presets as image_editor_presets
from mediagate.surfaces.image_editor import routes as image_editor
from mediagate.surfaces.input_guard import BODY_SLACK, InputGuard
from mediagate.surfaces.native import assets, byok, docs, identity, jobs, members, routes, webhooks
from mediagate.surfaces.native.envelope import render_error
from mediagate.surfaces.native.schemas import MAX_INPUT_IMAGES
from mediagate.webhooks.dispatcher import Dispatcher


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the app. The database must already be migrated (``mediagate db upgrade``)."""
    runtime = runtime or Runtime.from_settings(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        # Everything built so far (routes, models, the catalog, SQLAlchemy's metadata) lives as
        # long as the process: moved out of the collector's sight, full collections only walk
        # what requests create, which made them a tenth of a submit's CPU time.
        gc.freeze()
        stop = asyncio.Event()
        background = []
        if runtime.settings.embedded_workers:
            background = [
                asyncio.create_task(Worker(runtime).run_until(stop)),
                asyncio.create_task(
                    Dispatcher(
                        runtime, poll_seconds=runtime.settings.worker_poll_seconds
                    ).run_until(stop)
                ),
            ]
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*background)
            await runtime.close()

    app = FastAPI(
        title="Mediagate",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        description="Self-hosted generative-media API server.",
    )
    app.state.runtime = runtime
    document_bearer_auth(app)
    renderers = ErrorRenderers(fallback=render_error)
    renderers.register(["/v2"], image_agent_errors.render_error)
    renderers.register(["/api"], generate_chat_errors.render_error)
    renderers.register(["/api/v1/avatars", "/api/v1/jobs"], avatars_errors.render_error)
    renderers.register(["/api/v1/image-editor"], image_editor_errors.render_error)
    renderers.install(app)
    document_errors(app, renderers)
    app.add_middleware(InputGuard, renderers=renderers, limits=_body_limits(runtime.settings))
    # Outermost, so that every response, errors included, carries the rate-limit headers.
    app.add_middleware(RateLimitHeaders)
    for module in (
        health,
        routes,
        jobs,
        webhooks,
        members,
        byok,
        identity,
        assets,
        docs,
        image_agent,
        generate_chat,
        avatars,
        image_editor,
        image_editor_presets,
    ):
        app.include_router(module.router)
    return app


def _body_limits(settings: Settings) -> list[tuple[str, str, int]]:
    """The routes whose bodies carry images may be as large as their own limits add up to;
    every other body is a small JSON object (``DEFAULT_MAX_BODY``)."""
    data_urls = MAX_INPUT_IMAGES * base64_size(settings.max_input_image_bytes) + BODY_SLACK
    references = avatars_schemas.MAX_REFERENCES * base64_size(avatars_schemas.MAX_REFERENCE_BYTES)
    uploads = image_agent_schemas.MAX_IMAGES * image_agent_schemas.MAX_IMAGE_BYTES
    return [
        ("POST", "/v1/generate", data_urls),
        ("POST", "/v1/credits/estimate", data_urls),
        ("POST", "/api/v1/avatars/generate", references + BODY_SLACK),
        # Both stream their bodies and enforce their own limits as the bytes arrive.
        ("POST", "/v2/image/agent", uploads + BODY_SLACK),
        ("PUT", "/api/v1/image-editor/uploads/", settings.max_input_image_bytes + BODY_SLACK),
    ]
