"""The worker: claims jobs with a lease, runs their engine, and settles them.

Every write a worker makes after claiming goes through ``fenced_update`` with the token it got
at claim time, so a worker whose lease was taken over (it stalled, the job was rescued) can
never overwrite the new owner's work or charge twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.assets.inputs import InputLoader, own_asset_id
from mediagate.assets.models import Asset
from mediagate.assets.repository import AssetRepository
from mediagate.catalog.pricing import Units, quote
from mediagate.credits.service import CreditService
from mediagate.db.base import new_id
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output
from mediagate.jobs import events
from mediagate.jobs.models import Job
from mediagate.jobs.repository import JobRepository
from mediagate.jobs.service import JobService
from mediagate.jobs.status import JobStatus, assert_transition
from mediagate.plans.quotas import QuotaService
from mediagate.runtime import Runtime

log = logging.getLogger("mediagate.worker")


class LeaseLost(Exception):
    """Our fencing token is stale: another worker owns the job now."""


class _Context:
    """What an engine may call while it runs; every write is fenced."""

    def __init__(self, worker: Worker, job: Job, fence: int, loader: InputLoader) -> None:
        self.worker = worker
        self.job = job
        self.fence = fence
        self.loader = loader
        self.cancel_requested = False
        self.lease_lost = False
        self.run: asyncio.Task[Any] | None = None

    def request_cancel(self, grace_seconds: float) -> None:
        """Ask the engine to stop (it checks ``canceled()`` between steps); one that does not
        listen is stopped after ``grace_seconds``."""
        if self.cancel_requested:
            return
        self.cancel_requested = True
        if self.run is not None:
            asyncio.get_running_loop().call_later(grace_seconds, self.run.cancel)

    async def progress(
        self,
        fraction: float,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        preview: Output | None = None,
    ) -> None:
        """Record progress; ``preview`` (an intermediate image) is stored and linked."""
        now = self.worker.runtime.clock.now()
        data: dict[str, Any] = {
            "progress": round(fraction, 4),
            "message": message,
            **(details or {}),
        }
        preview_asset = None
        if preview is not None:
            sha = await asyncio.to_thread(self.worker.runtime.storage.put, preview.data)
            preview_asset = Asset(
                workspace_id=self.job.workspace_id,
                job_id=self.job.id,
                role="preview",
                position=int(data.get("step", 0)),
                sha256=sha,
                mime_type=preview.mime_type,
                bytes=len(preview.data),
                width=preview.width,
                height=preview.height,
                created_at=now,
            )
            data["preview_asset_id"] = preview_asset.id = new_id()
        async with self.worker.runtime.db.writer() as session:
            repo = JobRepository(session)
            if not await repo.fenced_update(
                self.job.id,
                self.fence,
                progress=fraction,
                progress_message=message[:500],
                updated_at=now,
            ):
                raise LeaseLost(self.job.id)
            if preview_asset is not None:
                session.add(preview_asset)
            await events.record(session, self.worker.runtime, self.job.id, "progress", data, now)

    async def load_input(self, url: str) -> bytes:
        return await self.loader.load(url)

    async def save_provider_task_id(self, task_id: str) -> None:
        async with self.worker.runtime.db.writer() as session:
            if not await JobRepository(session).fenced_update(
                self.job.id, self.fence, provider_task_id=task_id
            ):
                raise LeaseLost(self.job.id)

    def canceled(self) -> bool:
        return self.cancel_requested


class Worker:
    """Runs ``concurrency`` claim loops in the current event loop.

    >>> worker = Worker(runtime)            # doctest: +SKIP
    >>> await worker.run_until(stop_event)  # doctest: +SKIP
    """

    def __init__(self, runtime: Runtime, *, concurrency: int | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.concurrency = concurrency or self.settings.worker_concurrency
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._running: dict[str, _Context] = {}
        self._wakeups: asyncio.Queue[None] = asyncio.Queue()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; then claim nothing new, let running jobs finish for
        ``shutdown_grace_seconds``, and hand back whatever is still running."""
        loops = [asyncio.create_task(self._loop(stop)) for _ in range(self.concurrency)]
        helpers = [
            asyncio.create_task(self._rescue_loop(stop)),
            asyncio.create_task(self._cancel_listener()),
            asyncio.create_task(self._queue_listener()),
        ]
        try:
            await stop.wait()
            _, pending = await asyncio.wait(loops, timeout=self.settings.shutdown_grace_seconds)
            for task in pending:
                task.cancel()  # _execute hands the job back to the queue
            await asyncio.gather(*loops, return_exceptions=True)
        finally:
            for task in (*loops, *helpers):
                task.cancel()
            await asyncio.gather(*loops, *helpers, return_exceptions=True)

    async def _queue_listener(self) -> None:
        """Turn each "job queued" notification into one wake-up token, so that one new job
        wakes one idle loop instead of all of them racing for it."""
        with self.runtime.bus.subscribe("queue") as queued:
            while True:
                for _ in await queued.wait():
                    self._wakeups.put_nowait(None)

    async def _loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                if await self.run_once():
                    continue
            except Exception:  # a bug or a database hiccup must not kill the loop
                log.exception("worker loop error")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeups.get(), self.settings.worker_poll_seconds)

    async def _rescue_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                async with self.runtime.db.writer() as session:
                    await JobService(session, self.runtime).rescue_expired(self.runtime.clock.now())
            except Exception:
                log.exception("rescue pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.lease_seconds / 2)

    async def _cancel_listener(self) -> None:
        with self.runtime.bus.subscribe("cancel") as requests:
            while True:
                for job_id in await requests.wait():
                    running = self._running.get(job_id)
                    if running is not None:
                        running.request_cancel(self.settings.cancel_grace_seconds)

    async def run_once(self) -> bool:
        """Claim one job and run it to a settled state; False when the queue is empty."""
        now = self.runtime.clock.now()
        async with self.runtime.db.writer() as session:
            claimed = await JobRepository(session).claim(
                self.owner, now, now + timedelta(seconds=self.settings.lease_seconds)
            )
            if claimed is None:
                return False
            job_id, fence = claimed
            await events.record(
                session, self.runtime, job_id, "status", {"status": "processing"}, now
            )
        try:
            await self._execute(job_id, fence)
        except LeaseLost:
            log.warning("lease on job %s was taken over; dropping our result", job_id)
        return True

    async def _execute(self, job_id: str, fence: int) -> None:
        async with self.runtime.db.reader() as session:
            job = await JobRepository(session).get(job_id)
            assert job is not None
            asset_sha = await self._referenced_assets(session, job)
        model = self.runtime.catalog.model(job.model)
        if model is None:
            await self._fail(job, fence, "model_not_found", f"{job.model} left the catalog")
            return
        spec = JobSpec(
            id=job.id,
            workspace_id=job.workspace_id,
            model=model,
            prompt=job.params.get("prompt"),
            units=job.params.get("units") or {},
            input_urls=list(job.params.get("input_urls") or []),
            params=job.params,
            provider_task_id=job.provider_task_id,
            mode=job.mode,
        )
        loader = InputLoader(
            storage=self.runtime.storage,
            signing_key=self.settings.signing_key,
            max_bytes=self.settings.max_input_image_bytes,
            allow_private=self.settings.fetch_allow_private,
            allowed_networks=self.settings.fetch_allowed_networks,
            asset_sha=asset_sha,
        )
        ctx = _Context(self, job, fence, loader)
        ctx.cancel_requested = job.cancel_requested
        engine = self.runtime.engines.get(job.engine or "")
        run = asyncio.create_task(engine.run(spec, ctx))
        ctx.run = run
        beat = asyncio.create_task(self._heartbeat(job.id, fence, ctx))
        self._running[job.id] = ctx
        try:
            result = await asyncio.wait_for(run, self.runtime.catalog.timeout_for(model))
        except EngineError as exc:
            if exc.code == "canceled" and ctx.cancel_requested:
                await self._cancel(job, fence)
            else:
                await self._engine_failed(job, fence, exc)
            return
        except TimeoutError:
            await self._fail(job, fence, "timeout", "the engine did not finish in time")
            return
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                # We are shutting down: give the job back without spending an attempt.
                run.cancel()
                await self._hand_back(job, fence)
                raise
            if ctx.lease_lost:
                raise LeaseLost(job.id) from None
            await self._cancel(job, fence)  # a cancel request stopped the engine
            return
        except LeaseLost:
            raise
        except Exception as exc:
            log.exception("engine %s crashed on job %s", job.engine, job.id)
            await self._fail(
                job, fence, "engine_crashed", f"the engine failed: {type(exc).__name__}"
            )
            return
        finally:
            self._running.pop(job.id, None)
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, LeaseLost):
                await beat
        await self._complete(job, fence, result)

    async def _referenced_assets(self, session: Any, job: Job) -> dict[str, str]:
        found: dict[str, str] = {}
        repo = AssetRepository(session)
        for url in job.params.get("input_urls") or []:
            asset_id = own_asset_id(url, self.settings.signing_key)
            if asset_id and (asset := await repo.get(asset_id)) is not None:
                found[asset_id] = asset.sha256
        return found

    async def _heartbeat(self, job_id: str, fence: int, ctx: _Context) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            now = self.runtime.clock.now()
            async with self.runtime.db.writer() as session:
                repo = JobRepository(session)
                ok = await repo.fenced_update(
                    job_id,
                    fence,
                    lease_expires_at=now + timedelta(seconds=self.settings.lease_seconds),
                    updated_at=now,
                )
                job = await repo.get(job_id) if ok else None
            if not ok:
                ctx.lease_lost = True
                if ctx.run is not None:
                    ctx.run.cancel()
                raise LeaseLost(job_id)
            if job is not None and job.cancel_requested and not ctx.cancel_requested:
                # The request reached another process; the bus may not have told us.
                ctx.request_cancel(self.settings.cancel_grace_seconds)

    @contextlib.asynccontextmanager
    async def _leave_processing(
        self, job: Job, fence: int, status: JobStatus, **values: Any
    ) -> AsyncIterator[tuple[AsyncSession, datetime]]:
        """One fenced transaction that moves the job out of ``processing``; the caller adds
        the ledger movement and events. A stale token raises LeaseLost and writes nothing."""
        assert_transition(JobStatus.PROCESSING, status)
        now = self.runtime.clock.now()
        async with self.runtime.db.writer() as session:
            if not await JobRepository(session).fenced_update(
                job.id,
                fence,
                status=status,
                lease_owner=None,
                lease_expires_at=None,
                updated_at=now,
                **values,
            ):
                raise LeaseLost(job.id)
            yield session, now

    async def _complete(self, job: Job, fence: int, result: EngineResult) -> None:
        shas = [
            await asyncio.to_thread(self.runtime.storage.put, out.data) for out in result.outputs
        ]
        model = self.runtime.catalog.model(job.model)
        assert model is not None
        units = Units(
            **(job.params.get("units") or {}), image_input=bool(job.params.get("input_urls"))
        )
        charged = min(
            job.credits_held, quote(model, replace(units, count=result.delivered_count)).credits
        )
        async with self._leave_processing(
            job,
            fence,
            JobStatus.COMPLETED,
            progress=1.0,
            credits_charged=charged,
            error=None,
            finished_at=self.runtime.clock.now(),
        ) as (session, now):
            assets = [
                Asset(
                    workspace_id=job.workspace_id,
                    job_id=job.id,
                    role="output",
                    position=i,
                    sha256=sha,
                    mime_type=out.mime_type,
                    bytes=len(out.data),
                    width=out.width,
                    height=out.height,
                    duration_seconds=out.duration_seconds,
                    created_at=now,
                )
                for i, (sha, out) in enumerate(zip(shas, result.outputs, strict=True))
            ]
            await AssetRepository(session).add_all(assets)
            await CreditService(session).capture(
                job.workspace_id, job_id=job.id, held=job.credits_held, charged=charged
            )
            for asset in assets:
                await events.record(
                    session,
                    self.runtime,
                    job.id,
                    "output",
                    {"asset_id": asset.id, "index": asset.position},
                    now,
                )
            await events.record(
                session,
                self.runtime,
                job.id,
                "completed",
                {"status": "completed", "credits_charged": charged, "info": result.info},
                now,
            )

    async def _engine_failed(self, job: Job, fence: int, exc: EngineError) -> None:
        if not (exc.retryable and job.attempts < job.max_attempts):
            await self._fail(job, fence, exc.code, exc.message)
            return
        backoff = min(2**job.attempts, 60)
        async with self._leave_processing(
            job,
            fence,
            JobStatus.QUEUED,
            error={"code": exc.code, "message": exc.message},
            run_after=self.runtime.clock.now() + timedelta(seconds=backoff),
        ) as (session, now):
            await events.record(
                session,
                self.runtime,
                job.id,
                "status",
                {"status": "queued", "reason": exc.code, "retry_in_seconds": backoff},
                now,
            )

    async def _fail(self, job: Job, fence: int, code: str, message: str) -> None:
        error = {"code": code, "message": message}
        async with self._leave_processing(
            job, fence, JobStatus.FAILED, error=error, finished_at=self.runtime.clock.now()
        ) as (session, now):
            await CreditService(session).release(
                job.workspace_id, job_id=job.id, held=job.credits_held
            )
            # Nothing was delivered: the daily quota it took is given back.
            await QuotaService(session, self.runtime.catalog).give_back(
                job.workspace_id, job.params.get("quota")
            )
            await events.record(
                session, self.runtime, job.id, "failed", {"status": "failed", "error": error}, now
            )

    async def _cancel(self, job: Job, fence: int) -> None:
        async with self._leave_processing(
            job, fence, JobStatus.CANCELED, finished_at=self.runtime.clock.now()
        ) as (session, now):
            await CreditService(session).release(
                job.workspace_id, job_id=job.id, held=job.credits_held
            )
            # Nothing was delivered: the daily quota it took is given back.
            await QuotaService(session, self.runtime.catalog).give_back(
                job.workspace_id, job.params.get("quota")
            )
            await events.record(
                session, self.runtime, job.id, "canceled", {"status": "canceled"}, now
            )

    async def _hand_back(self, job: Job, fence: int) -> None:
        try:
            async with self._leave_processing(
                job,
                fence,
                JobStatus.QUEUED,
                run_after=self.runtime.clock.now(),
                attempts=Job.attempts - 1,
            ) as (session, now):
                await events.record(
                    session,
                    self.runtime,
                    job.id,
                    "status",
                    {"status": "queued", "reason": "worker_shutdown"},
                    now,
                )
            await self._notify_queued()
        except LeaseLost:
            pass

    async def _notify_queued(self) -> None:
        async with self.runtime.db.writer() as session:
            await self.runtime.bus.notify(session, "queue")
