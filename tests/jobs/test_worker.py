"""The worker against the real database: leases, fencing, retries and settlement.

The engine seam is swapped for a controllable one (engines are plug-ins); the worker, the
ledger and the database are the real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mediagate.auth.principal import SCOPES, Principal
from mediagate.catalog.pricing import Units
from mediagate.config import Settings
from mediagate.credits.models import LedgerEntry
from mediagate.credits.service import CreditService
from mediagate.engines.base import EngineError, EngineResult, JobSpec, Output, RunContext
from mediagate.engines.registry import EngineRegistry
from mediagate.jobs.models import Job
from mediagate.jobs.service import JobService, SubmitRequest, submit_job
from mediagate.jobs.worker import Worker
from mediagate.runtime import Runtime
from mediagate.workspaces.service import WorkspaceService
from tests.conftest import database_url

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


class ScriptedEngine:
    """Plays back a script: each run takes the next step (an exception, or 'ok'), and may
    wait on a gate first so a test can interleave workers."""

    name = "builtin"
    offline = True

    def __init__(self, script: list[object], gates: dict[int, asyncio.Event] | None = None):
        self.script = script
        self.gates = gates or {}
        self.started: list[asyncio.Event] = [asyncio.Event() for _ in script]
        self.calls = 0

    def serves(self, model: object) -> bool:
        return True

    async def run(self, job: JobSpec, ctx: RunContext) -> EngineResult:
        call = self.calls
        self.calls += 1
        self.started[call].set()
        if call in self.gates:
            await self.gates[call].wait()
        step = self.script[call]
        if isinstance(step, BaseException):
            raise step
        await ctx.progress(1.0, f"run {call}")
        return EngineResult([Output(PNG + bytes([call]), "image/png", 1, 1)], delivered_count=1)


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


@pytest.fixture(params=["sqlite", "postgres"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    with database_url(request.param, tmp_path) as url:
        settings = Settings(
            data_dir=tmp_path,
            database_url=url,
            secret_key="k" * 32,
            heartbeat_seconds=3600,
            lease_seconds=30,
        )
        rt = Runtime.from_settings(settings)
        rt.clock = Clock()  # type: ignore[assignment]
        yield rt
        await rt.close()


async def _principal(rt: Runtime, credits: int = 100) -> Principal:
    async with rt.db.writer() as s:
        ws, owner = await WorkspaceService(s, rt.catalog).create("w", plan="pro", credits=credits)
    return Principal(
        workspace_id=ws.id, plan="pro", member_id=owner.id, scopes=frozenset(SCOPES), mode="sandbox"
    )


async def _submit(rt: Runtime, p: Principal) -> str:
    model = rt.catalog.model("z-image")
    assert model
    done = await submit_job(
        rt,
        p,
        SubmitRequest(
            surface="native",
            model=model,
            units=Units(count=1, resolution="1K", aspect_ratio="1:1"),
            prompt="x",
        ),
        lambda job: {"id": job.job_id},
    )
    return done.job_id


async def _job(rt: Runtime, job_id: str) -> Job:
    async with rt.db.reader() as s:
        job = await s.get(Job, job_id)
        assert job
        return job


async def _ledger(rt: Runtime, job_id: str) -> list[tuple[str, int]]:
    async with rt.db.reader() as s:
        rows = await s.execute(
            select(LedgerEntry.kind, LedgerEntry.amount)
            .where(LedgerEntry.job_id == job_id)
            .order_by(LedgerEntry.created_at)
        )
        return [(k, a) for k, a in rows]


async def test_a_zombie_workers_late_write_is_refused(runtime: Runtime) -> None:
    p = await _principal(runtime)
    job_id = await _submit(runtime, p)
    gate = asyncio.Event()
    runtime.engines = EngineRegistry([ScriptedEngine(["ok", "ok"], {0: gate})])
    zombie, rescuer = Worker(runtime), Worker(runtime)

    stalled = asyncio.create_task(zombie.run_once())
    await runtime.engines.get("builtin").started[0].wait()  # type: ignore[attr-defined]
    runtime.clock.at = runtime.clock.now().replace(minute=5)  # type: ignore[attr-defined]
    async with runtime.db.writer() as s:
        assert await JobService(s, runtime).rescue_expired(runtime.clock.now()) == 1
    assert (await _job(runtime, job_id)).status == "queued"

    assert await rescuer.run_once()
    done = await _job(runtime, job_id)
    assert done.status == "completed" and done.attempts == 2

    gate.set()  # the zombie wakes up and tries to complete the job
    assert await stalled
    after = await _job(runtime, job_id)
    assert after.lease_owner is None and after.fence == done.fence
    assert await _ledger(runtime, job_id) == [("hold", 20), ("capture", -20)]
    async with runtime.db.reader() as s:
        balance = await CreditService(s).balance(p.workspace_id)
        from mediagate.assets.models import Asset

        outputs = await s.scalar(select(func.count()).where(Asset.job_id == job_id))
    assert (balance.balance, balance.held) == (80, 0)
    assert outputs == 1


async def test_a_lost_lease_is_noticed_by_the_heartbeat(runtime: Runtime) -> None:
    runtime.settings.heartbeat_seconds = 0.05
    p = await _principal(runtime)
    job_id = await _submit(runtime, p)
    engine = ScriptedEngine(["ok"], {0: asyncio.Event()})  # never released
    runtime.engines = EngineRegistry([engine])
    run = asyncio.create_task(Worker(runtime).run_once())
    await engine.started[0].wait()
    runtime.clock.at = runtime.clock.now().replace(minute=5)  # type: ignore[attr-defined]
    async with runtime.db.writer() as s:
        await JobService(s, runtime).rescue_expired(runtime.clock.now())
    assert await asyncio.wait_for(run, 5)  # the heartbeat cancelled the stalled engine
    assert (await _job(runtime, job_id)).status == "queued"


async def test_transient_errors_retry_then_succeed(runtime: Runtime) -> None:
    p = await _principal(runtime)
    job_id = await _submit(runtime, p)
    runtime.engines = EngineRegistry(
        [ScriptedEngine([EngineError("busy", code="upstream_busy", retryable=True), "ok"])]
    )
    worker = Worker(runtime)
    assert await worker.run_once()
    job = await _job(runtime, job_id)
    assert job.status == "queued" and job.error == {"code": "upstream_busy", "message": "busy"}
    assert not await worker.run_once()  # backing off: not runnable yet
    runtime.clock.at = job.run_after  # type: ignore[attr-defined]
    assert await worker.run_once()
    job = await _job(runtime, job_id)
    assert job.status == "completed" and job.attempts == 2 and job.error is None
    assert await _ledger(runtime, job_id) == [("hold", 20), ("capture", -20)]


async def test_retries_stop_at_max_attempts_and_release_the_hold(runtime: Runtime) -> None:
    p = await _principal(runtime)
    job_id = await _submit(runtime, p)
    busy = EngineError("busy", code="upstream_busy", retryable=True)
    runtime.engines = EngineRegistry([ScriptedEngine([busy, busy, busy])])
    worker = Worker(runtime)
    for _ in range(3):
        assert await worker.run_once()
        runtime.clock.at = (await _job(runtime, job_id)).run_after  # type: ignore[attr-defined]
    job = await _job(runtime, job_id)
    assert job.status == "failed" and job.error["code"] == "upstream_busy"  # type: ignore[index]
    assert await _ledger(runtime, job_id) == [("hold", 20), ("release", 20)]


async def test_an_engine_crash_fails_the_job_without_charging(runtime: Runtime) -> None:
    p = await _principal(runtime)
    job_id = await _submit(runtime, p)
    runtime.engines = EngineRegistry([ScriptedEngine([ZeroDivisionError("bug")])])
    assert await Worker(runtime).run_once()
    job = await _job(runtime, job_id)
    assert job.status == "failed" and job.error == {
        "code": "engine_crashed",
        "message": "the engine failed: ZeroDivisionError",
    }
    async with runtime.db.reader() as s:
        balance = await CreditService(s).balance(p.workspace_id)
    assert (balance.balance, balance.held) == (100, 0)


async def test_out_of_attempts_rescue_fails_the_job(runtime: Runtime) -> None:
    p = await _principal(runtime)
    job_id = await _submit(runtime, p)
    engine = ScriptedEngine(["ok"] * 3, {i: asyncio.Event() for i in range(3)})
    runtime.engines = EngineRegistry([engine])
    stuck = []
    for attempt in range(3):
        stuck.append(asyncio.create_task(Worker(runtime).run_once()))
        await engine.started[attempt].wait()
        runtime.clock.at = runtime.clock.now().replace(  # type: ignore[attr-defined]
            minute=runtime.clock.now().minute + 1
        )
        async with runtime.db.writer() as s:
            await JobService(s, runtime).rescue_expired(runtime.clock.now())
    job = await _job(runtime, job_id)
    assert job.status == "failed" and job.error["code"] == "worker_lost"  # type: ignore[index]
    for gate in engine.gates.values():
        gate.set()
    await asyncio.gather(*stuck)
    assert (await _job(runtime, job_id)).status == "failed"
    assert await _ledger(runtime, job_id) == [("hold", 20), ("release", 20)]
