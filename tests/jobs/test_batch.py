"""Group commit: submits queued together are decided in order and written in one transaction,
on the real runtime and database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from mediagate.auth.principal import SCOPES, Principal
from mediagate.catalog.pricing import Units
from mediagate.config import Settings
from mediagate.credits.models import LedgerEntry
from mediagate.credits.service import CreditService
from mediagate.errors import Conflict, InsufficientCredits
from mediagate.jobs.batch import LINGER_BELOW
from mediagate.jobs.models import Job, JobEvent
from mediagate.jobs.service import Accepted, SubmitRequest, Submitted
from mediagate.plans.models import QuotaUsage
from mediagate.plans.quotas import QuotaExceeded
from mediagate.runtime import Runtime
from mediagate.workspaces.service import WorkspaceService
from tests.conftest import database_url

PRICE = 20  # z-image, one 1K image


@pytest.fixture(params=["sqlite", "postgres"])
async def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Runtime]:
    with database_url(request.param, tmp_path) as url:
        rt = Runtime.from_settings(
            Settings(data_dir=tmp_path, database_url=url, secret_key="k" * 32)
        )
        yield rt
        await rt.close()


async def _principal(rt: Runtime, credits: int, plan: str = "pro") -> Principal:
    async with rt.db.writer() as s:
        ws, owner = await WorkspaceService(s, rt.catalog).create("w", plan=plan, credits=credits)
    return Principal(
        workspace_id=ws.id, plan=plan, member_id=owner.id, scopes=frozenset(SCOPES), mode="sandbox"
    )


def _request(
    rt: Runtime, *, key: str | None = None, prompt: str = "x", public_id: str | None = None
) -> SubmitRequest:
    model = rt.catalog.model("z-image")
    assert model
    return SubmitRequest(
        surface="native",
        model=model,
        units=Units(count=1, resolution="1K", aspect_ratio="1:1"),
        prompt=prompt,
        idempotency_key=key,
        fingerprint=prompt,
        public_id=public_id,
    )


def _render(job: Accepted) -> dict[str, str]:
    return {"id": job.job_id, "hold": job.usage_event_id}


async def _burst(
    rt: Runtime, p: Principal, requests: list[SubmitRequest]
) -> list[Submitted | BaseException]:
    """Queue every request before the writer runs, so that they form one batch."""
    return await asyncio.gather(
        *(rt.submits.submit(p, r, _render, idempotent=True) for r in requests),
        return_exceptions=True,
    )


async def _count(rt: Runtime, model: type[object], workspace_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(model)  # type: ignore[arg-type]
    if workspace_id is not None:
        stmt = stmt.where(model.workspace_id == workspace_id)  # type: ignore[attr-defined]
    async with rt.db.reader() as s:
        return int(await s.scalar(stmt) or 0)


async def test_a_burst_is_one_transaction_decided_in_arrival_order(runtime: Runtime) -> None:
    p = await _principal(runtime, credits=3 * PRICE + PRICE // 2)
    before = runtime.submits.transactions
    results = await _burst(runtime, p, [_request(runtime, prompt=f"p{i}") for i in range(5)])
    assert runtime.submits.transactions == before + 1
    made = [r for r in results if isinstance(r, Submitted)]
    assert len(made) == 3 and results[:3] == made  # the first three, in order
    for refused in results[3:]:
        assert isinstance(refused, InsufficientCredits)
        assert refused.details["required"] == PRICE
        assert refused.details["available"] == PRICE // 2
    async with runtime.db.reader() as s:
        balance = await CreditService(s).balance(p.workspace_id)
        holds = (await s.scalars(select(LedgerEntry).where(LedgerEntry.kind == "hold"))).all()
        jobs = (await s.scalars(select(Job).where(Job.workspace_id == p.workspace_id))).all()
        events = (await s.scalars(select(JobEvent))).all()
    assert (balance.held, balance.available) == (3 * PRICE, PRICE // 2)
    assert {h.job_id for h in holds} == {j.id for j in jobs} == {m.job_id for m in made}
    assert {m.body["hold"] for m in made} == {h.id for h in holds}
    assert all(j.status == "queued" and j.credits_held == PRICE for j in jobs)
    assert sorted((e.job_id, e.seq, e.type) for e in events) == sorted(
        (j.id, 1, "status") for j in jobs
    )


async def test_twins_in_one_batch_make_one_job_and_a_changed_body_is_refused(
    runtime: Runtime,
) -> None:
    p = await _principal(runtime, credits=10 * PRICE)
    first, twin, other = await _burst(
        runtime,
        p,
        [
            _request(runtime, key="k1"),
            _request(runtime, key="k1"),
            _request(runtime, key="k1", prompt="another body"),
        ],
    )
    assert isinstance(first, Submitted) and isinstance(twin, Submitted)
    assert not first.replayed and twin.replayed
    assert (twin.job_id, twin.body) == (first.job_id, first.body)
    assert isinstance(other, Conflict) and other.code == "idempotency_key_mismatch"
    assert await _count(runtime, Job, p.workspace_id) == 1
    # A later retry, in a batch of its own, replays the stored record.
    again = await runtime.submits.submit(p, _request(runtime, key="k1"), _render, idempotent=True)
    assert again.replayed and again.body == first.body
    async with runtime.db.reader() as s:
        assert (await CreditService(s).balance(p.workspace_id)).held == PRICE


async def test_the_daily_quota_is_counted_across_a_batch(runtime: Runtime) -> None:
    p = await _principal(runtime, credits=100 * PRICE, plan="free")
    limit = runtime.catalog.plans["free"].daily_quotas["image"]
    assert limit is not None
    results = await _burst(
        runtime, p, [_request(runtime, prompt=f"p{i}") for i in range(limit + 2)]
    )
    assert all(isinstance(r, Submitted) for r in results[:limit])
    assert all(isinstance(r, QuotaExceeded) for r in results[limit:])
    async with runtime.db.reader() as s:
        used = await s.scalar(
            select(QuotaUsage.used).where(QuotaUsage.workspace_id == p.workspace_id)
        )
        held = (await CreditService(s).balance(p.workspace_id)).held
    assert used == limit
    assert held == limit * PRICE  # the refused ones held nothing


async def test_a_batch_that_fails_as_a_whole_is_written_again_one_by_one(
    runtime: Runtime,
) -> None:
    """The middle submit collides with an existing job's public id: its batch rolls back, the
    other two are then written on their own and only the bad one fails."""
    p = await _principal(runtime, credits=10 * PRICE)
    await runtime.submits.submit(p, _request(runtime, public_id="taken"), _render, idempotent=True)
    before = runtime.submits.transactions
    ok1, bad, ok2 = await _burst(
        runtime,
        p,
        [
            _request(runtime, key="a"),
            _request(runtime, key="b", public_id="taken"),
            _request(runtime, key="c"),
        ],
    )
    assert isinstance(ok1, Submitted) and isinstance(ok2, Submitted)
    assert isinstance(bad, IntegrityError)
    assert runtime.submits.transactions == before + 2  # the failed batch committed nothing
    assert await _count(runtime, Job, p.workspace_id) == 3
    async with runtime.db.reader() as s:
        assert (await CreditService(s).balance(p.workspace_id)).held == 3 * PRICE
    # The failed key was never recorded: a corrected retry goes through.
    retry = await runtime.submits.submit(p, _request(runtime, key="b"), _render, idempotent=True)
    assert not retry.replayed


async def test_rows_written_without_the_orm_read_back_as_the_orm_wrote_them(
    runtime: Runtime,
) -> None:
    """On SQLite the batch writes through ``sqlite3`` itself: timestamps must keep
    SQLAlchemy's text format (it is compared as text in SQL), JSON must round-trip."""
    p = await _principal(runtime, credits=10 * PRICE)
    at = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)  # no microseconds: the format's edge
    runtime.clock = FrozenClock(at)  # type: ignore[assignment]
    made = await runtime.submits.submit(
        p, _request(runtime, key="fmt", prompt="é ☃"), _render, idempotent=True
    )
    async with runtime.db.reader() as s:
        job = await s.get(Job, made.job_id)
        assert job is not None
        assert (job.created_at, job.run_after) == (at, at)
        assert job.params["prompt"] == "é ☃" and job.metadata_ == {}
        assert job.cancel_requested is False and job.lease_expires_at is None
        if runtime.db.is_sqlite:
            raw = (
                await s.execute(text("SELECT created_at FROM jobs WHERE id = :id"), {"id": job.id})
            ).scalar_one()
            assert raw == "2026-11-23 12:00:00.000000"
        # The claim query compares run_after with a bound timestamp: the job is due now.
        due = await s.scalar(
            select(func.count()).select_from(Job).where(Job.id == job.id, Job.run_after <= at)
        )
        assert due == 1
    again = await runtime.submits.submit(
        p, _request(runtime, key="fmt", prompt="é ☃"), _render, idempotent=True
    )
    assert again.replayed and again.body == made.body


class FrozenClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


async def test_a_steady_stream_waits_briefly_to_share_a_transaction(runtime: Runtime) -> None:
    p = await _principal(runtime, credits=100 * PRICE)
    batcher = runtime.submits
    batcher.linger_seconds = 0.5  # long, so that a slow machine cannot blur the two cases

    async def submit(prompt: str) -> Submitted:
        return await batcher.submit(p, _request(runtime, prompt=prompt), _render, idempotent=True)

    # After a quiet spell a submit is written at once: the next one, 0.1 s later, is not in it.
    before = batcher.transactions
    alone = asyncio.create_task(submit("alone"))
    await asyncio.sleep(0.1)
    await asyncio.gather(alone, submit("later"))
    assert batcher.transactions == before + 2

    # Once submits come faster than the linger, a small batch waits for the next ones.
    await _burst(runtime, p, [_request(runtime, prompt=f"b{i}") for i in range(12)])
    before = batcher.transactions
    first = asyncio.create_task(submit("first"))
    await asyncio.sleep(0.1)
    await asyncio.gather(first, submit("second"))
    assert batcher.transactions == before + 1


async def test_a_linger_ends_once_enough_submits_wait(runtime: Runtime) -> None:
    p = await _principal(runtime, credits=100 * PRICE)
    batcher = runtime.submits
    batcher.linger_seconds = 30.0  # would outlast the test: only enough submits end it
    await _burst(runtime, p, [_request(runtime, prompt=f"b{i}") for i in range(30)])
    before = batcher.transactions
    first = asyncio.create_task(
        batcher.submit(p, _request(runtime, prompt="first"), _render, idempotent=True)
    )
    await asyncio.sleep(0.05)  # the writer is lingering on a batch of one
    assert batcher.transactions == before and not first.done()
    rest = [_request(runtime, prompt=f"r{i}") for i in range(LINGER_BELOW - 1)]
    await asyncio.wait_for(asyncio.gather(first, _burst(runtime, p, rest)), timeout=10)
    assert batcher.transactions == before + 1
