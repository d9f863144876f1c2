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

    async def first_outputs(self, job_ids: Sequence[str]) -> dict[str, Asset]:
        """Each job's first output (position 0), for jobs that have one."""
        if not job_ids:
            return {}
        rows = await self.session.scalars(
            select(Asset).where(
                Asset.job_id.in_(job_ids), Asset.role == "output", Asset.position == 0
            )
        )
        return {a.job_id: a for a in rows if a.job_id is not None}
