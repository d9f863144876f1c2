"""Saving avatars: only a completed avatar job of the same workspace becomes a saved avatar."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.assets.repository import AssetRepository
from mediagate.avatars.models import SavedAvatar
from mediagate.avatars.repository import SavedAvatarRepository
from mediagate.clock import utcnow
from mediagate.errors import Conflict, DomainError, NotFound
from mediagate.jobs.repository import JobRepository


class SavedAvatarService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = SavedAvatarRepository(session)
        self.session = session

    async def save(self, workspace_id: str, job_id: str, name: str) -> SavedAvatar:
        job = await JobRepository(self.session).get_in_workspace(workspace_id, job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", code="job_not_found", field="job_id")
        if job.product != "avatar":
            raise DomainError(
                f"job {job_id} is not an avatar job",
                code="not_an_avatar_job",
                status=422,
                field="job_id",
            )
        if job.status != "completed":
            raise Conflict(
                f"job {job_id} is {job.status}; only a completed avatar can be saved",
                code="job_not_completed",
                field="job_id",
            )
        outputs = await AssetRepository(self.session).for_job(job.id)
        return await self.repo.add(
            SavedAvatar(
                workspace_id=workspace_id,
                name=name,
                job_id=job.id,
                asset_id=outputs[0].id,
                created_at=utcnow(),
            )
        )

    async def get(self, workspace_id: str, avatar_id: str) -> SavedAvatar:
        avatar = await self.repo.get(workspace_id, avatar_id)
        if avatar is None:
            raise NotFound(f"no avatar {avatar_id!r}", code="avatar_not_found")
        return avatar

    async def page(
        self, workspace_id: str, limit: int, offset: int
    ) -> tuple[Sequence[SavedAvatar], int]:
        return await self.repo.page(workspace_id, limit, offset)
