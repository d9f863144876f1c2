"""How large a request body may be, per route, answered with 413 in the surface's envelope.

Without a cap, a client (before any authentication: FastAPI reads a body parameter before it
solves dependencies) could make the server hold a body of any size in memory. Most routes
take a small JSON object; the few that carry images get what their own limits add up to, and
the routes that stream uploads keep enforcing their own, finer limits first.

FastAPI's ``max_body_size`` would count the bytes too, but it answers a declared
``Content-Length`` over the limit with a plain-text body, whatever the surface's envelope.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagate.surfaces.errors import ErrorRenderers

# A JSON body of fields and short texts: prompts are at most 10,000 characters.
DEFAULT_MAX_BODY = 1024 * 1024
# What a body holds besides its images (fields, JSON or multipart framing).
BODY_SLACK = 1024 * 1024


def base64_size(raw_bytes: int) -> int:
    """How long ``raw_bytes`` bytes are in base64 (a data URL's payload)."""
    return (raw_bytes + 2) // 3 * 4


class BodyLimit:
    """Refuses a body over its route's limit: at once when ``Content-Length`` declares one,
    else as the bytes arrive (a chunked body), when the route reads past the limit.

    ``limits`` holds ``(method, path, bytes)``, where a path that ends in ``/`` covers every
    path under it; every other request gets ``DEFAULT_MAX_BODY``."""

    def __init__(
        self, app: ASGIApp, renderers: ErrorRenderers, limits: Sequence[tuple[str, str, int]]
    ) -> None:
        self.app = app
        self.renderers = renderers
        self.limits = limits

    def limit_for(self, method: str, path: str) -> int:
        for limit_method, route, limit in self.limits:
            if method == limit_method and (
                path == route or (route.endswith("/") and path.startswith(route))
            ):
                return limit
        return DEFAULT_MAX_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        limit = self.limit_for(scope["method"], path)
        message = f"the request body may be at most {limit} bytes here"
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            render = self.renderers.for_path(path)
            await render(413, "payload_too_large", message, {}, None)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            incoming = await receive()
            if incoming["type"] == "http.request":
                received += len(incoming.get("body", b""))
                if received > limit:
                    # An HTTPException passes through FastAPI's body parsing unchanged, and the
                    # app's handler renders it in the surface's envelope.
                    raise HTTPException(413, detail=message)
            return incoming

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None
