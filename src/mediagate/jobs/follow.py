"""Following a job: replay its events after a sequence number, then go live, until it ends.

The events table is the source; bus notifications only say "look again", and a poll every
``poll_seconds`` covers a missed notification (or a bus that cannot cross processes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from mediagate.jobs.models import Job, JobEvent
from mediagate.jobs.repository import JobRepository

if TYPE_CHECKING:
    from mediagate.runtime import Runtime

TERMINAL_EVENTS = {"completed", "failed", "canceled"}


async def follow(
    runtime: Runtime, job_id: str, after_seq: int, *, poll_seconds: float, idle_seconds: float
) -> AsyncIterator[JobEvent | None]:
    """Yield events in order; ``None`` after ``idle_seconds`` without one (a heartbeat cue).
    Ends after the terminal event."""
    last_sent = time.monotonic()
    with runtime.bus.subscribe("events", job_id) as wake:
        while True:
            async with runtime.db.reader() as session:
                batch = await JobRepository(session).events(job_id, after_seq)
            for event in batch:
                after_seq = event.seq
                last_sent = time.monotonic()
                yield event
                if event.type in TERMINAL_EVENTS:
                    return
            if time.monotonic() - last_sent >= idle_seconds:
                last_sent = time.monotonic()
                yield None
            await wake.wait(min(poll_seconds, idle_seconds))


async def wait_until_done(runtime: Runtime, job_id: str, seconds: float) -> Job:
    """Wait up to ``seconds`` for the job to end; return it as it is then."""
    deadline = time.monotonic() + seconds
    with runtime.bus.subscribe("events", job_id) as wake:
        while True:
            async with runtime.db.reader() as session:
                job = await JobRepository(session).get(job_id)
            assert job is not None
            remaining = deadline - time.monotonic()
            if job.status in TERMINAL_EVENTS or remaining <= 0:
                return job
            await wake.wait(min(remaining, runtime.settings.stream_poll_seconds))
