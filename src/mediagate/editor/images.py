"""Images the editor knows by id: announced uploads, their arrival, and /process results."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.assets.models import Asset
from mediagate.assets.repository import AssetRepository
from mediagate.editor.models import EditorImage
from mediagate.errors import InvalidRequest, NotFound

UPLOAD_WINDOW = timedelta(hours=1)


class EditorImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, image_id: str) -> EditorImage | None:
        return await self.session.get(EditorImage, image_id)

    async def for_job(self, job_id: str) -> EditorImage | None:
        return await self.session.scalar(
            select(EditorImage).where(EditorImage.job_id == job_id, EditorImage.origin == "result")
        )

    async def add(self, image: EditorImage) -> EditorImage:
        self.session.add(image)
        await self.session.flush()
        return image


class EditorImageService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repo = EditorImageRepository(session)
        self.assets = AssetRepository(session)

    async def announce(
        self, workspace_id: str, file_name: str, mime_type: str, size: int | None, now: datetime
    ) -> EditorImage:
        return await self.repo.add(
            EditorImage(
                workspace_id=workspace_id,
                origin="upload",
                file_name=file_name,
                mime_type=mime_type,
                declared_size=size,
                upload_expires_at=now + UPLOAD_WINDOW,
                created_at=now,
            )
        )

    async def get(self, workspace_id: str, image_id: str) -> EditorImage:
        """An image of this workspace; anyone else's is indistinguishable from missing."""
        image = await self.repo.get(image_id)
        if image is None or image.workspace_id != workspace_id:
            raise NotFound(f"no image {image_id!r} in this workspace", code="image_not_found")
        return image

    async def asset_of(self, workspace_id: str, image_id: str) -> Asset:
        """The stored file behind an image id, for use as an input."""
        image = await self.get(workspace_id, image_id)
        asset = await self.assets.get(image.asset_id) if image.asset_id else None
        if asset is None:
            raise InvalidRequest(
                f"image {image_id!r} has not been uploaded yet: PUT it to its upload_url first",
                code="image_not_uploaded",
                field="image_id",
            )
        return asset

    async def attach(self, image: EditorImage, asset: Asset) -> None:
        await self.assets.add_all([asset])
        image.asset_id = asset.id
        await self.session.flush()

    async def result_of(self, workspace_id: str, job_id: str, asset: Asset) -> EditorImage:
        """The image id of a job's output (made once, on first need), for chained edits."""
        found = await self.repo.for_job(job_id)
        if found is not None:
            return found
        return await self.repo.add(
            EditorImage(
                workspace_id=workspace_id,
                origin="result",
                mime_type=asset.mime_type,
                asset_id=asset.id,
                job_id=job_id,
                created_at=asset.created_at,
            )
        )
