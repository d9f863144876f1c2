"""All SQL about assets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.assets.models import Asset


class AssetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_all(self, assets: list[Asset]) -> None:
        self.session.add_all(assets)
        await self.session.flush()

    async def get(self, asset_id: str) -> Asset | None:
        return await self.session.get(Asset, asset_id)

    async def for_job(self, job_id: str, role: str = "output") -> Sequence[Asset]:
        return (
            await self.session.scalars(
                select(Asset)
                .where(Asset.job_id == job_id, Asset.role == role)
                .order_by(Asset.position)
            )
        ).all()
