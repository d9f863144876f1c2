"""Recording a job event: the one place that appends it, wakes listeners and feeds webhooks.

Everything happens inside the caller's transaction; the wake-up and any webhook delivery only
become real when it commits.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.jobs.models import Job
from mediagate.jobs.repository import JobRepository

if TYPE_CHECKING:
    from mediagate.runtime import Runtime

# Stream event type -> webhook event type; progress and output events are stream-only.
WEBHOOK_EVENTS = {
    "queued": "job.queued",
    "processing": "job.processing",
    "completed": "job.completed",
    "failed": "job.failed",
    "canceled": "job.canceled",
}


async def record(
    session: AsyncSession,
    runtime: Runtime,
    job_id: str,
    type_: str,
    data: dict[str, Any],
    now: datetime,
    *,
    job: Job | None = None,
    first: bool = False,
) -> int:
    """Append event ``type_`` to the job and announce it; returns its sequence number.

    Pass ``job`` only when it is this session's up-to-date object; otherwise the job is read
    afresh when a webhook needs rendering."""
    repo = JobRepository(session)
    seq = await repo.append_event(job_id, type_, data, now, first=first)
    await runtime.bus.notify(session, "events", job_id, str(seq))
    webhook_type = WEBHOOK_EVENTS.get(_status_of(type_, data))
    if webhook_type is not None:
        from mediagate.webhooks.outbox import enqueue_job_event

        current = job or await repo.get(job_id)
        assert current is not None
        await enqueue_job_event(session, runtime, current, webhook_type, now)
    return seq


def _status_of(type_: str, data: dict[str, Any]) -> str:
    # A "status" event carries the new status; going back to the queue for a retry (it has a
    # "reason") is not announced.
    if type_ == "status":
        return "" if "reason" in data else str(data.get("status", ""))
    return type_
