"""Job use cases: submit (through the group-commit batcher), read, cancel, and the rescue of
jobs whose worker vanished."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.assets.models import Asset
from mediagate.assets.repository import AssetRepository
from mediagate.auth.principal import Principal
from mediagate.catalog.pricing import Units
from mediagate.catalog.schemas import Model
from mediagate.credits.service import CreditService
from mediagate.errors import Conflict, NotFound
from mediagate.idempotency.service import Claim, IdempotencyService
from mediagate.jobs import events
from mediagate.jobs.models import Job
from mediagate.jobs.repository import JobRepository
from mediagate.jobs.status import JobStatus
from mediagate.plans.quotas import QuotaService

if TYPE_CHECKING:
    from mediagate.runtime import Runtime

# How long an in-flight idempotency claim blocks retries before a retry may take it over
# (its request died mid-way). Submits take milliseconds; this only matters after a crash.
CLAIM_LEASE = timedelta(seconds=30)


@dataclass(frozen=True)
class Accepted:
    """What a surface needs to answer a submit it made: the new job's ids and hold."""

    job_id: str
    public_id: str | None
    workspace_id: str
    created_at: datetime
    usage_event_id: str  # the ledger entry holding its credits
    provider_task_id: str | None = None


Renderer = Callable[[Accepted], dict[str, Any]]


@dataclass(frozen=True)
class SubmitRequest:
    surface: str
    model: Model
    units: Units
    prompt: str | None
    input_urls: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    fingerprint: str = ""
    correlation_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    webhook_url: str | None = None
    status_code: int = 200
    public_id: str | None = None
    # Files that came with the request (already stored), recorded as the job's inputs.
    input_assets: list[Asset] = field(default_factory=list)
    # A named engine instead of the registry's choice (a workspace's own provider key).
    engine: str | None = None
    # Nothing is held or charged (the workspace pays its provider directly).
    free: bool = False


@dataclass(frozen=True)
class Submitted:
    job_id: str
    status_code: int
    body: dict[str, Any]
    replayed: bool


class JobService:
    def __init__(self, session: AsyncSession, runtime: Runtime) -> None:
        self.session = session
        self.runtime = runtime
        self.jobs = JobRepository(session)
        self.credits = CreditService(session)
        self.idempotency = IdempotencyService(session)

    async def get(self, principal: Principal, job_id: str) -> Job:
        """A job of the caller's workspace; anyone else's is indistinguishable from missing."""
        job = await self.jobs.get_in_workspace(principal.workspace_id, job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}", code="job_not_found")
        return job

    async def outputs(self, job: Job) -> Sequence[Asset]:
        return await AssetRepository(self.session).for_job(job.id)

    async def cancel(self, principal: Principal, job_id: str) -> Job:
        """Cancel at once while queued (releasing the hold); ask the worker to stop while
        processing (engines check between steps); a finished job cannot be canceled."""
        job = await self.get(principal, job_id)
        now = self.runtime.clock.now()
        if await self.jobs.cancel_if_queued(job.id, now):
            await self.credits.release(job.workspace_id, job_id=job.id, held=job.credits_held)
            await QuotaService(self.session, self.runtime.catalog).give_back(
                job.workspace_id, job.params.get("quota")
            )
            await events.record(
                self.session, self.runtime, job.id, "canceled", {"status": "canceled"}, now
            )
        elif await self.jobs.request_cancel(job.id, now):
            await self.runtime.bus.notify(self.session, "cancel", job.id, job.id)
        else:
            current = await self.jobs.get(job.id)
            assert current is not None
            raise Conflict(
                f"job {job.id} is already {current.status}",
                code="job_not_cancelable",
                status_now=current.status,
            )
        refreshed = await self.jobs.get(job.id)
        assert refreshed is not None
        return refreshed

    async def rescue_expired(self, now: datetime) -> int:
        """Requeue (or, out of attempts, fail) jobs whose lease ran out. Bumping the fence
        means the vanished worker, should it come back, can no longer write."""
        rescued = 0
        for job in await self.jobs.expired_leases(now):
            if job.attempts >= job.max_attempts:
                job.status = JobStatus.FAILED
                job.error = {
                    "code": "worker_lost",
                    "message": f"gave up after {job.attempts} attempts",
                }
                job.finished_at = now
                await self.credits.release(job.workspace_id, job_id=job.id, held=job.credits_held)
                await QuotaService(self.session, self.runtime.catalog).give_back(
                    job.workspace_id, job.params.get("quota")
                )
                await self.session.flush()
                await events.record(
                    self.session,
                    self.runtime,
                    job.id,
                    "failed",
                    {"status": "failed", "error": job.error},
                    now,
                    job=job,
                )
            else:
                job.status = JobStatus.QUEUED
                job.run_after = now
                await self.session.flush()
                await events.record(
                    self.session,
                    self.runtime,
                    job.id,
                    "status",
                    {"status": "queued", "reason": "lease_expired"},
                    now,
                )
            job.fence += 1
            job.lease_owner = None
            job.lease_expires_at = None
            job.updated_at = now
            rescued += 1
        await self.session.flush()
        return rescued


async def claim_key(
    runtime: Runtime, principal: Principal, req: SubmitRequest, *, lease: timedelta = CLAIM_LEASE
) -> Claim:
    """Commit an in-flight claim on the request's idempotency key (or find its replay);
    ``lease`` is how long the claim blocks retries should this request die."""
    assert req.idempotency_key
    for attempt in range(2):
        try:
            async with runtime.db.writer() as session:
                return await IdempotencyService(session).begin(
                    principal.workspace_id,
                    req.surface,
                    req.idempotency_key,
                    req.fingerprint,
                    now=runtime.clock.now(),
                    lease=lease,
                )
        except IntegrityError:
            # A twin inserted its claim between our read and our insert: read it now.
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


async def release_key(runtime: Runtime, record_id: str) -> None:
    async with runtime.db.writer() as session:
        await IdempotencyService(session).abandon(record_id)


async def submit_job(
    runtime: Runtime, principal: Principal, req: SubmitRequest, render: Renderer
) -> Submitted:
    """The edge of job creation: the job, its credit hold and first event, and with an
    idempotency key its completed record, in one transaction shared with other submits
    (``jobs.batch``). A retry of a finished request replays its answer."""
    return await runtime.submits.submit(principal, req, render, idempotent=True)
