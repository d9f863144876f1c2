"""Images the editor knows by id: announced uploads, their arrival, and /process results."""

from __future__ import annotations

from collections.abc import Sequence
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

    async def results_of(self, job_ids: Sequence[str]) -> dict[str, EditorImage]:
        if not job_ids:
            return {}
        rows = await self.session.scalars(
            select(EditorImage).where(
                EditorImage.job_id.in_(job_ids), EditorImage.origin == "result"
            )
        )
        return {i.job_id: i for i in rows if i.job_id is not None}

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

    async def results_of(self, outputs: dict[str, Asset]) -> dict[str, str]:
        """The image ids of jobs' outputs (``job id -> first output``), for chained edits; an
        output gets its id the first time it is asked for, so read first, write only then."""
        found = {job_id: i.id for job_id, i in (await self.repo.results_of(list(outputs))).items()}
        for job_id, asset in outputs.items():
            if job_id not in found:
                image = await self.repo.add(
                    EditorImage(
                        workspace_id=asset.workspace_id,
                        origin="result",
                        mime_type=asset.mime_type,
                        asset_id=asset.id,
                        job_id=job_id,
                        created_at=asset.created_at,
                    )
                )
                found[job_id] = image.id
        return found
