"""``POST /auth/moltbook/exchange``: an identity JWT in, a 15-minute access token out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from mediagate.auth.moltbook import exchange
from mediagate.surfaces.deps import RuntimeDep
from mediagate.surfaces.native.envelope import Envelope, ok
from mediagate.surfaces.native.schemas import AccessToken, ExchangeRequest

router = APIRouter(tags=["identity"])


@router.post(
    "/auth/moltbook/exchange",
    response_model=Envelope[AccessToken],
    summary="Exchange a Moltbook identity token for a short-lived access token",
)
async def moltbook_exchange(body: ExchangeRequest, runtime: RuntimeDep) -> dict[str, Any]:
    async with runtime.db.writer() as session:
        result = await exchange(session, body.identity_token, runtime.settings, runtime.catalog)
    return ok(
        AccessToken(
            access_token=result.access_token,
            expires_in=result.expires_in,
            workspace_id=result.workspace_id,
            member_id=result.member_id,
        ).model_dump()
    )
