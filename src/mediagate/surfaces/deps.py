"""Request dependencies shared by every surface."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute, iter_route_contexts

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
                        operation["security"] = [{"HTTPBearer": []}]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _authenticates(dependant: Any) -> bool:
    return any(sub.call is get_principal or _authenticates(sub) for sub in dependant.dependencies)
