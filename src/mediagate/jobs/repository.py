"""All SQL about jobs and job events, including the claim query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.jobs.models import Job, JobEvent
from mediagate.jobs.status import JobStatus


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, job: Job) -> Job:
        self.session.add(job)
        await self.session.flush()
        return job

    async def get(self, job_id: str) -> Job | None:
        return await self.session.get(Job, job_id, populate_existing=True)

    async def get_in_workspace(self, workspace_id: str, job_id: str) -> Job | None:
        return await self.session.scalar(
            select(Job).where(Job.id == job_id, Job.workspace_id == workspace_id)
        )

    async def by_public_id(self, workspace_id: str, public_id: str) -> Job | None:
        return await self.session.scalar(
            select(Job).where(Job.public_id == public_id, Job.workspace_id == workspace_id)
        )

    async def page_for_surface(
        self,
        workspace_id: str,
        surface: str,
        *,
        statuses: list[str] | None,
        offset: int,
        limit: int,
    ) -> tuple[Sequence[Job], int]:
        """One page of a surface's jobs, most recent first, and how many there are in all."""
        where = [Job.workspace_id == workspace_id, Job.surface == surface]
        if statuses:
            where.append(Job.status.in_(statuses))
        total = await self.session.scalar(select(func.count()).select_from(Job).where(*where))
        rows = await self.session.scalars(
            select(Job)
            .where(*where)
            .order_by(Job.created_at.desc(), Job.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return rows.all(), int(total or 0)

    async def append_event(
        self, job_id: str, type_: str, data: dict[str, Any], now: datetime, *, first: bool = False
    ) -> int:
        """Append the next numbered event. ``first`` is for a job inserted in this
        transaction with ``last_event_seq=1``: its first event needs no counter update."""
        seq: int | None = 1
        if not first:
            seq = await self.session.scalar(
                update(Job)
                .where(Job.id == job_id)
                .values(last_event_seq=Job.last_event_seq + 1)
                .returning(Job.last_event_seq)
            )
        assert seq is not None
        self.session.add(JobEvent(job_id=job_id, seq=seq, type=type_, data=data, created_at=now))
        return seq

    async def events(self, job_id: str, after_seq: int = 0) -> Sequence[JobEvent]:
        return (
            await self.session.scalars(
                select(JobEvent)
                .where(JobEvent.job_id == job_id, JobEvent.seq > after_seq)
                .order_by(JobEvent.seq)
            )
        ).all()

    async def claim(
        self, owner: str, now: datetime, lease_until: datetime
    ) -> tuple[str, int] | None:
        """Take the oldest runnable job. PostgreSQL skips rows other workers have locked;
        on SQLite the write transaction (BEGIN IMMEDIATE) already makes this exclusive."""
        candidate = (
            select(Job.id)
            .where(Job.status == JobStatus.QUEUED, Job.run_after <= now)
            .order_by(Job.run_after, Job.created_at)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        row = (
            await self.session.execute(
                update(Job)
                .where(Job.id == candidate, Job.status == JobStatus.QUEUED)
                .values(
                    status=JobStatus.PROCESSING,
                    lease_owner=owner,
                    lease_expires_at=lease_until,
                    fence=Job.fence + 1,
                    attempts=Job.attempts + 1,
                    started_at=func.coalesce(Job.started_at, now),
                    updated_at=now,
                )
                .returning(Job.id, Job.fence)
                .execution_options(synchronize_session=False)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def fenced_update(self, job_id: str, fence: int, **values: Any) -> bool:
        """Write only while ``fence`` is still the job's token: a worker whose lease was
        taken over gets False and must stop."""
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.fence == fence, Job.status == JobStatus.PROCESSING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def expired_leases(self, now: datetime, limit: int = 50) -> Sequence[Job]:
        return (
            await self.session.scalars(
                select(Job)
                .where(Job.status == JobStatus.PROCESSING, Job.lease_expires_at < now)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()

    async def cancel_if_queued(self, job_id: str, now: datetime) -> bool:
        """Cancel a job that no worker holds yet; False if it already moved on."""
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.CANCELED, finished_at=now, updated_at=now, cancel_requested=True
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def request_cancel(self, job_id: str, now: datetime) -> bool:
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.PROCESSING)
            .values(cancel_requested=True, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined]
