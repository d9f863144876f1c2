"""Request dependencies shared by every surface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, ValidationError

from mediagate.auth.principal import Principal
from mediagate.auth.service import authenticate_cached
from mediagate.plans.ratelimit import STATE_KEY, RateLimited
from mediagate.runtime import Runtime

# The scheme the OpenAPI document declares; ``get_principal`` reads the header itself, to answer
# in the surface's envelope.
BEARER_SCHEME = {
    "type": "http",
    "description": "An API key (mg_live_/mg_test_) or an access token from the identity exchange",
    "scheme": "bearer",
}
BEARER_SECURITY: list[dict[str, list[str]]] = [{"HTTPBearer": []}]  # an operation's ``security``


async def runtime_dependency(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread, a thread
    # round trip on every request for what is one attribute read.
    return get_runtime(request)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_principal(request: Request) -> Principal:
    runtime = get_runtime(request)
    principal = await authenticate_cached(
        runtime.db, request.headers.get("authorization"), runtime.settings.signing_key
    )
    plan = runtime.catalog.plans.get(principal.plan)
    if plan is not None:
        window = await runtime.limiter.hit(
            principal.api_key_id or principal.member_id, plan.requests_per_minute
        )
        setattr(request.state, STATE_KEY, window)  # RateLimitHeaders puts it on the response
        if not window.allowed:
            raise RateLimited(
                f"rate limit of {window.limit} requests per minute reached for this key "
                f"({principal.plan} plan)",
                retry_after=window.headers()["Retry-After"],
            )
    return principal


M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M]) -> M:
    """The JSON body as ``model``, for a route that reads it itself.

    On the busiest routes, FastAPI solving a body model, a header and the auth dependency as
    parameters cost more CPU than the rest of the request; pydantic's own JSON parser does the
    same checks in one pass. Failures are the ``RequestValidationError`` FastAPI would raise,
    so each surface renders them as usual. Document such a route with ``reads_itself``."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise _invalid_body("send a JSON object with Content-Type: application/json")
    raw = await request.body()
    if not raw:
        raise _invalid_body("Field required")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from None


def _invalid_body(message: str) -> RequestValidationError:
    return RequestValidationError([{"type": "invalid_body", "loc": ("body",), "msg": message}])


def reads_itself(body: type[BaseModel], *, headers: Sequence[str] = ()) -> dict[str, Any]:
    """``openapi_extra`` for a route that authenticates (``get_principal``) and reads its JSON
    body (``read_json``) and ``headers`` itself: the document shows them as it shows FastAPI
    parameters."""
    extra: dict[str, Any] = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body.model_json_schema()}},
        },
        "security": BEARER_SECURITY,
    }
    if headers:
        extra["parameters"] = [
            {
                "in": "header",
                "name": name,
                "required": False,
                "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": name.title()},
            }
            for name in headers
        ]
    return extra


def base_url(request: Request) -> str:
    """Where clients reach us: the configured public URL, else the request's own base."""
    configured = get_runtime(request).settings.public_base_url
    return (configured or str(request.base_url)).rstrip("/")


RuntimeDep = Annotated[Runtime, Depends(runtime_dependency)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]


def document_bearer_auth(app: FastAPI) -> None:
    """Declare bearer authentication in the OpenAPI document on every operation that
    authenticates. A security dependency would do it too, but FastAPI charges every request
    for each dependency of a route (about 40 µs each here), and this one only fed the docs."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        schema.setdefault("components", {}).setdefault("securitySchemes", {})["HTTPBearer"] = (
            BEARER_SCHEME
        )
        for route in iter_route_contexts(app.routes):
            if isinstance(route.original_route, APIRoute) and _authenticates(route.dependant):
                for method in route.methods or ():
                    operation = schema["paths"].get(route.path_format, {}).get(method.lower())
                    if operation is not None:
                        operation["security"] = BEARER_SECURITY
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _authenticates(dependant: Any) -> bool:
    return any(sub.call is get_principal or _authenticates(sub) for sub in dependant.dependencies)
