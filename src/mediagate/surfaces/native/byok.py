"""A workspace's own provider keys (BYOK): ``/v1/provider-keys``, scope ``admin``.

No response ever carries a key: only its provider, last four characters and state.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from mediagate.byok import schemas as s
from mediagate.byok.service import ProviderKeyService
from mediagate.surfaces.deps import PrincipalDep, RuntimeDep
from mediagate.surfaces.native.envelope import Envelope, ok

router = APIRouter(tags=["provider keys"])


@router.get(
    "/v1/provider-keys",
    response_model=Envelope[s.ProviderKeyList],
    summary="The workspace's provider keys (never the keys themselves)",
)
async def list_keys(principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    principal.require("admin")
    async with runtime.db.reader() as session:
        keys = await ProviderKeyService(session, runtime.settings).list(principal.workspace_id)
    return ok(s.ProviderKeyList(provider_keys=[s.ProviderKeyView.of(k) for k in keys]).model_dump())


@router.put(
    "/v1/provider-keys/{provider}",
    response_model=Envelope[s.ProviderKeyView],
    responses={201: {"description": "Created"}},
    summary="Set or replace the key for a provider: openai, google, fal, kie or xai",
)
async def set_key(
    provider: str,
    body: s.ProviderKeySet,
    response: Response,
    principal: PrincipalDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    principal.require("admin")
    async with runtime.db.writer() as session:
        key, created = await ProviderKeyService(session, runtime.settings, clock=runtime.clock).set(
            principal.workspace_id, provider, body.api_key, enabled=body.enabled
        )
    response.status_code = 201 if created else 200
    return ok(s.ProviderKeyView.of(key).model_dump())


@router.patch(
    "/v1/provider-keys/{provider}",
    response_model=Envelope[s.ProviderKeyView],
    summary="Enable or disable a provider key",
)
async def update_key(
    provider: str, body: s.ProviderKeyUpdate, principal: PrincipalDep, runtime: RuntimeDep
) -> dict[str, Any]:
    principal.require("admin")
    async with runtime.db.writer() as session:
        key = await ProviderKeyService(session, runtime.settings, clock=runtime.clock).set_enabled(
            principal.workspace_id, provider, body.enabled
        )
    return ok(s.ProviderKeyView.of(key).model_dump())


@router.delete(
    "/v1/provider-keys/{provider}",
    response_model=Envelope[s.ProviderKeyDeleted],
    summary="Delete a provider key",
)
async def delete_key(provider: str, principal: PrincipalDep, runtime: RuntimeDep) -> dict[str, Any]:
    principal.require("admin")
    async with runtime.db.writer() as session:
        await ProviderKeyService(session, runtime.settings).delete(principal.workspace_id, provider)
    return ok(s.ProviderKeyDeleted(provider=provider).model_dump())
