"""One exception handler for the app; each surface supplies how its errors look.

A surface registers a renderer for its path prefixes; the longest matching prefix wins, and
the native envelope is the fallback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagate.credits.service import TOP_UP_SUGGESTION
from mediagate.errors import Conflict, DomainError, InsufficientCredits, NotFound, PayloadTooLarge
from mediagate.plans.ratelimit import RateLimited

log = logging.getLogger("mediagate.errors")

FieldErrors = list[dict[str, str]]
# (status, machine code, human message, details, field errors) -> response
Renderer = Callable[[int, str, str, dict[str, Any], FieldErrors | None], JSONResponse]

_HTTP_CODES = {
    400: "invalid_request",
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


# What the published OpenAPI shows for each error an operation can answer: the machine code, a
# message and the details, as a route would raise them. Each surface renders them its own way.
_EXAMPLES: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: ("validation_error", "Field required", {}),
    401: ("invalid_api_key", "invalid or revoked API key", {}),
    402: (
        InsufficientCredits.code,
        "this needs 20 credits and 5 are available",
        {"required": 20, "available": 5, "suggestion": TOP_UP_SUGGESTION},
    ),
    403: ("missing_scope", "this key lacks the 'generate' scope", {"scope": "generate"}),
    404: (NotFound.code, "no such object in this workspace", {}),
    409: (Conflict.code, "this key was used with a different request", {}),
    413: (PayloadTooLarge.code, "the body is larger than this endpoint accepts", {}),
    422: ("provider_rejected", "the provider refused the input", {}),
    429: (RateLimited.code, "rate limit of 60 requests per minute reached", {"retry_after": "12"}),
}


# Declared by the routes that submit a job (``responses=``); ``document_errors`` renders them.
SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    402: {"description": "Not enough credits available for the job's estimate"},
    409: {
        "description": "The idempotency key was used with a different request, or its first "
        "request is still being processed (on /v1/generate also: a stale price_version)"
    },
}


def document_errors(app: FastAPI, renderers: ErrorRenderers) -> None:
    """Show each operation's error responses in the OpenAPI document as its surface renders
    them, in place of FastAPI's 422 (invalid input is answered with 400 here):

    - 400 where the operation takes parameters or a body;
    - 401, 403 and 429 where it authenticates (the key, its scopes, the plan's minute);
    - 404 where its path names an object;
    - and whatever error statuses the route declares itself (``responses=``), e.g. 402 and
      409 on submits, filled in the same way."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schemas = schema.get("components", {}).get("schemas", {})
        for path, operations in schema["paths"].items():
            render = renderers.for_path(path)
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if "HTTPValidationError" in json.dumps(responses.get("422", {})):
                    del responses["422"]  # FastAPI's own, for a body we never send
                statuses = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
                if operation.get("parameters") or operation.get("requestBody"):
                    statuses.add(400)
                if operation.get("security"):
                    statuses |= {401, 403, 429}
                if "{" in path:
                    statuses.add(404)
                for status in sorted(statuses):
                    declared = responses.get(str(status), {})
                    responses[str(status)] = {
                        "description": HTTPStatus(status).phrase,
                        **declared,
                        "content": {
                            "application/json": _example(render, status, operation, schemas)
                        },
                    }
        # FastAPI's validation error schemas describe a body we never send.
        for name in ("HTTPValidationError", "ValidationError"):
            if f'"#/components/schemas/{name}"' not in json.dumps(schema["paths"]):
                schemas.pop(name, None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _example(
    render: Renderer, status: int, operation: dict[str, Any], schemas: dict[str, Any]
) -> dict[str, Any]:
    code, message, details = _EXAMPLES.get(status, ("error", HTTPStatus(status).phrase, {}))
    errors: FieldErrors | None = None
    if status == 400:
        field = _required_field(operation, schemas)
        if field is None:  # nothing is required: a value of the wrong kind, then
            parameters = sorted(operation.get("parameters", []), key=lambda p: p["in"] == "path")
            field = parameters[0]["name"] if parameters else "body"
            message = "invalid value"
        errors = [{"field": field, "message": message}]
        message = f"{field}: {message}"
    body = json.loads(bytes(render(status, code, message, details, errors).body))
    schema = _schema_of(body)
    if status == 400:  # a request that parses but does not fit is a 400 of another shape
        refused = render(
            400, "invalid_request", "units.count must be one of [1, 2, 4, 8]", {}, None
        )
        schema = _either(schema, _schema_of(json.loads(bytes(refused.body))))
    return {"schema": schema, "example": body}


def _either(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """A schema that both bodies satisfy: what they share, and nothing promised where they
    differ."""
    if a == b:
        return a
    if a.get("type") == b.get("type") == "object":
        names = {**a["properties"], **b["properties"]}
        return {
            "type": "object",
            "properties": {
                name: _either(a["properties"].get(name, {}), b["properties"].get(name, {}))
                for name in names
            },
        }
    return {}


def _required_field(operation: dict[str, Any], schemas: dict[str, Any]) -> str | None:
    """The first field the operation requires: in its body, else among its query and header
    parameters (a path parameter is never missing)."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        body = media.get("schema", {})
        if "$ref" in body:
            body = schemas.get(body["$ref"].rsplit("/", 1)[-1], {})
        if body.get("required"):
            return str(body["required"][0])
    parameters = operation.get("parameters", [])
    return next((p["name"] for p in parameters if p.get("required") and p["in"] != "path"), None)


def _schema_of(value: Any) -> dict[str, Any]:
    """A schema that the example satisfies, and every response of its kind: objects name
    their keys and types, and where the example holds nothing (``null``, ``{}``, ``[]``)
    nothing is promised."""
    if isinstance(value, dict) and value:
        return {"type": "object", "properties": {k: _schema_of(v) for k, v in value.items()}}
    if isinstance(value, list) and value:
        return {"type": "array", "items": _schema_of(value[0])}
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return {"type": name}
    return {}


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
