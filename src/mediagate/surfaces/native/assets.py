"""``GET /v1/assets/{id}``: serves a stored file to whoever holds a valid signed link."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse

from mediagate.assets import signing
from mediagate.assets.repository import AssetRepository
from mediagate.errors import Forbidden, NotFound
from mediagate.surfaces.deps import RuntimeDep

router = APIRouter(tags=["assets"])


@router.get(
    "/v1/assets/{asset_id}",
    response_class=FileResponse,
    summary="Download an asset through a signed, expiring link",
)
async def download_asset(
    asset_id: str, expires: int, signature: str, runtime: RuntimeDep
) -> FileResponse:
    if not signing.verify(runtime.settings.signing_key, asset_id, expires, signature):
        raise Forbidden(
            "this link is invalid or has expired; fetch the job again for a fresh one",
            code="invalid_signature",
        )
    async with runtime.db.reader() as session:
        asset = await AssetRepository(session).get(asset_id)
    if asset is None or not runtime.storage.exists(asset.sha256):
        raise NotFound("asset not found", code="asset_not_found")
    return FileResponse(
        runtime.storage.path(asset.sha256),
        media_type=asset.mime_type,
        headers={"Cache-Control": "private, max-age=3600", "ETag": f'"{asset.sha256}"'},
    )
