"""Request dependencies shared by every surface."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mediagate.auth.principal import Principal
from mediagate.auth.service import authenticate_cached
from mediagate.plans.ratelimit import STATE_KEY, RateLimited
from mediagate.runtime import Runtime

# Declared for the OpenAPI document; we read the header ourselves to answer in our envelope.
_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (mg_live_/mg_test_) or an access token from the identity exchange",
)


async def runtime_dependency(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a plain ``def`` dependency on a worker thread, a thread
    # round trip on every request for what is one attribute read.
    return get_runtime(request)


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)] = None,
) -> Principal:
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
