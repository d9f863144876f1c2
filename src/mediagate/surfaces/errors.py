"""One exception handler for the app; each surface supplies how its errors look.

A surface registers a renderer for its path prefixes; the longest matching prefix wins, and
the native envelope is the fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagate.errors import DomainError

log = logging.getLogger("mediagate.errors")

FieldErrors = list[dict[str, str]]
# (status, machine code, human message, details, field errors) -> response
Renderer = Callable[[int, str, str, dict[str, Any], FieldErrors | None], JSONResponse]

_HTTP_CODES = {
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def field_errors(exc: RequestValidationError) -> FieldErrors:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = str(err.get("msg", "invalid value"))
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        out.append({"field": ".".join(loc) or "body", "message": message})
    return out


class ErrorRenderers:
    def __init__(self, fallback: Renderer) -> None:
        self.fallback = fallback
        self._by_prefix: list[tuple[str, Renderer]] = []

    def register(self, prefixes: list[str], renderer: Renderer) -> None:
        self._by_prefix.extend((p, renderer) for p in prefixes)
        self._by_prefix.sort(key=lambda item: -len(item[0]))

    def for_path(self, path: str) -> Renderer:
        for prefix, renderer in self._by_prefix:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return renderer
        return self.fallback

    def install(self, app: FastAPI) -> None:
        @app.exception_handler(DomainError)
        async def _domain(request: Request, exc: DomainError) -> JSONResponse:
            response = self.for_path(request.url.path)(
                exc.status, exc.code, exc.message, exc.details, None
            )
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            if "retry_after" in exc.details:
                response.headers["Retry-After"] = str(exc.details["retry_after"])
            return response

        @app.exception_handler(RequestValidationError)
        async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
            errors = field_errors(exc)
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
            return self.for_path(request.url.path)(400, "validation_error", summary, {}, errors)

        @app.exception_handler(HTTPException)
        async def _http(request: Request, exc: HTTPException) -> JSONResponse:
            code = _HTTP_CODES.get(exc.status_code, "http_error")
            response = self.for_path(request.url.path)(
                exc.status_code, code, str(exc.detail), {}, None
            )
            if exc.headers:
                response.headers.update(exc.headers)
            return response

        app.add_middleware(_CatchAll, renderers=self)


class _CatchAll:
    """Turns an unexpected exception into a 500 in the surface's envelope, and ends the
    request normally. (Starlette's own last-resort handler re-raises after answering, and the
    server then drops the connection, which a client sees as a reset rather than a 500.)"""

    def __init__(self, app: ASGIApp, renderers: ErrorRenderers) -> None:
        self.app = app
        self.renderers = renderers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            if started:
                raise
            path = scope.get("path", "")
            log.exception("unhandled error on %s %s", scope.get("method"), path)
            response = self.renderers.for_path(path)(
                500, "internal_error", "the server hit an unexpected error", {}, None
            )
            await response(scope, receive, send)
