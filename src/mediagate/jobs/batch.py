"""Job submits with group commit: many requests, one write transaction.

A request prices and validates on its own and then hands its submit to the runtime's
``SubmitBatcher``. One writer task takes whatever is queued (up to ``MAX_BATCH``) and creates
all of it in a single transaction:

1. read what decides, one statement per table for the whole batch: the idempotency records of
   the keys, the credit accounts (locked), today's quota use (locked) and the enabled webhook
   endpoints of the workspaces;
2. decide each submit in arrival order, in Python: replay, idempotency conflict, quota used up,
   not enough credits, or accepted (each accepted submit lowers what the next one may use);
3. write everything accepted with one multi-row statement per table.

Under load a batch holds the submits that arrived while the previous one was being written, so
the cost of a transaction and of each statement is shared; an idle server writes batches of
one. In between, when submits arrive faster than one per ``LINGER_SECONDS`` but a batch would
still be small, the writer waits that long for more (or until ``LINGER_BELOW`` wait) before it
starts, as PostgreSQL's commit delay and MySQL's group commit do: a transaction costs about as
much as ten submits' statements, and at half of peak load batches of one or two kept the
server near saturation.
A submit refused on its own merits gets its error and leaves the rest of its batch alone.
If the transaction as a whole fails (on PostgreSQL a twin request in another process can insert
the same idempotency key or quota row between our read and our write), it is rolled back and
its submits are written again one at a time, where such a race resolves like any other retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from mediagate.assets.models import Asset
from mediagate.auth.principal import Principal
from mediagate.catalog.pricing import quote
from mediagate.clock import utcnow
from mediagate.credits.models import LedgerEntry
from mediagate.credits.service import TOP_UP_SUGGESTION
from mediagate.db.base import new_id
from mediagate.errors import DomainError, InsufficientCredits, NotFound
from mediagate.events.bus import Note
from mediagate.idempotency.models import IdempotencyRecord
from mediagate.idempotency.service import RETENTION, replay_of
from mediagate.jobs.batch_store import (
    BatchStore,
    CoreStore,
    Key,
    NeedsSession,
    Record,
    SqliteStore,
)
from mediagate.jobs.events import WEBHOOK_EVENTS
from mediagate.jobs.models import Job, JobEvent
from mediagate.jobs.service import Accepted, Renderer, SubmitRequest, Submitted
from mediagate.jobs.status import JobStatus
from mediagate.plans.quotas import Charge, charge_for, day_of
from mediagate.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage
from mediagate.webhooks.outbox import build_message

if TYPE_CHECKING:
    from mediagate.runtime import Runtime

log = logging.getLogger("mediagate.jobs")

MAX_BATCH = 64
# 3 ms, not 1: at half of peak load batches of two or three wrote ~20 WAL pages per commit,
# and the disk's write-back stalls set the latency tail (bench/RESULTS.md).
LINGER_SECONDS = 0.003
LINGER_BELOW = 8  # submits; a batch this large already shares its transaction well
_QUEUED = {"status": JobStatus.QUEUED.value}
_QUEUED_WEBHOOK = WEBHOOK_EVENTS["queued"]


class _Raced(Exception):
    """Another process changed a row between this batch's read and its write."""


@dataclass
class _Pending:
    principal: Principal
    req: SubmitRequest
    render: Renderer
    # Check and record ``req.idempotency_key`` in the same transaction as the job.
    idempotent: bool
    future: asyncio.Future[Submitted]


@dataclass
class _Writes:
    """Everything a batch will insert or update, gathered while deciding."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    expired_records: list[str] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # (workspace, product, day, limit) -> how much more this batch uses
    quota: dict[tuple[str, str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    assets: list[Asset] = field(default_factory=list)  # a request's own files
    webhooks: list[tuple[WebhookMessage, list[WebhookDelivery]]] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)


class SubmitBatcher:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._queue: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None
        self.transactions = 0  # committed, for the logs and the tests
        self.linger_seconds = LINGER_SECONDS
        # Moving average of the time between submits, and when the last one came.
        self._gap = 1.0
        self._last_arrival = 0.0
        self._lingering: asyncio.Future[None] | None = None  # ends a linger early

    async def submit(
        self, principal: Principal, req: SubmitRequest, render: Renderer, *, idempotent: bool
    ) -> Submitted:
        """Create the job (or replay the key's earlier outcome); raises what refused it."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._gap = 0.9 * self._gap + 0.1 * min(now - self._last_arrival, 1.0)
        self._last_arrival = now
        future: asyncio.Future[Submitted] = loop.create_future()
        self._queue.append(_Pending(principal, req, render, idempotent, future))
        if len(self._queue) >= LINGER_BELOW and self._lingering is not None:
            _finish(self._lingering)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def close(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer

    async def _drain(self) -> None:
        while self._queue:
            # One turn of the loop first, so that submits already on their way join this batch.
            await asyncio.sleep(0)
            if len(self._queue) < LINGER_BELOW and self._gap < self.linger_seconds:
                await self._linger()
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            try:
                await self._write_batch(batch)
            except BaseException as exc:  # never leave a caller waiting
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    async def _linger(self) -> None:
        """Wait ``linger_seconds`` for more submits, or until ``LINGER_BELOW`` are queued."""
        loop = asyncio.get_running_loop()
        self._lingering = loop.create_future()
        timer = loop.call_later(self.linger_seconds, _finish, self._lingering)
        try:
            await self._lingering
        finally:
            timer.cancel()
            self._lingering = None

    async def _write_batch(self, batch: list[_Pending]) -> None:
        if len(batch) == 1:
            await self._write_alone(batch[0])
            return
        try:
            outcomes = await self._transaction(batch)
        except Exception as exc:
            log.info("a batch of %d submits failed (%s); writing them one by one", len(batch), exc)
            for item in batch:
                await self._write_alone(item)
            return
        for item, outcome in zip(batch, outcomes, strict=True):
            _resolve(item.future, outcome)

    async def _write_alone(self, item: _Pending) -> None:
        """A batch of one; a race with another process is retried, as a client would."""
        outcome: Submitted | Exception
        for attempt in range(3):
            try:
                outcome = (await self._transaction([item]))[0]
            except (_Raced, DBAPIError) as exc:
                outcome = exc
                if attempt < 2:
                    continue
            except Exception as exc:
                outcome = exc
            break
        _resolve(item.future, outcome)

    async def _transaction(self, batch: list[_Pending]) -> list[Submitted | Exception]:
        db = self.runtime.db
        if db.is_sqlite and not any(item.req.input_assets for item in batch):
            # The common case, without a session; one that needs the ORM starts again below.
            try:
                async with db.sqlite_writer() as (conn, dialect):
                    store = SqliteStore(conn, dialect)
                    outcomes = await _Batch(self.runtime, store, batch).run()
                self.runtime.bus.announce(store.committed_notes)
                self.transactions += 1
                return outcomes
            except NeedsSession:
                pass
        async with db.writer() as session:
            outcomes = await _Batch(self.runtime, CoreStore(session, self.runtime.bus), batch).run()
        self.transactions += 1
        return outcomes


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _resolve(future: asyncio.Future[Submitted], outcome: Submitted | Exception) -> None:
    if future.done():  # its caller went away
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class _Batch:
    """One transaction's worth of submits: read, decide in order, write."""

    def __init__(self, runtime: Runtime, store: BatchStore, batch: list[_Pending]) -> None:
        self.runtime = runtime
        self.store = store
        self.batch = batch
        self.now = runtime.clock.now()
        self.writes = _Writes()
        # Filled by ``_read``.
        self.records: dict[Key, Record] = {}
        self.accounts: dict[str, list[int]] = {}
        self.used: dict[tuple[str, str], int] = {}
        self.endpoints: dict[str, list[WebhookEndpoint]] = {}
        self.charges: list[Charge | None] = []  # one per submit, in batch order

    async def run(self) -> list[Submitted | Exception]:
        await self._read()
        outcomes: list[Submitted | Exception] = []
        for item, charge in zip(self.batch, self.charges, strict=True):
            try:
                outcomes.append(self._decide(item, charge))
            except DomainError as exc:
                outcomes.append(exc)
        await self._write()
        return outcomes

    async def _read(self) -> None:
        workspaces = {item.principal.workspace_id for item in self.batch}
        keys = [key for key in map(_key, self.batch) if key is not None]
        self.records = await self.store.records(keys)
        accounts = await self.store.accounts(workspaces)
        self.accounts = {ws: [balance, held] for ws, (balance, held) in accounts.items()}
        self.charges = [self._charge(item) for item in self.batch]
        limited = {
            item.principal.workspace_id
            for item, charge in zip(self.batch, self.charges, strict=True)
            if charge is not None
        }
        if limited:
            self.used = await self.store.quota_used(limited, day_of(self.now))
        self.endpoints = await self.store.endpoints(workspaces)

    def _charge(self, item: _Pending) -> Charge | None:
        req, product = item.req, item.req.model.product
        amount = req.units.count if product == "image" else 1
        return charge_for(self.runtime.catalog, item.principal.plan, product, amount, self.now)

    def _decide(self, item: _Pending, charge: Charge | None) -> Submitted:
        principal, req, now = item.principal, item.req, self.now
        key = _key(item)
        if key is not None:
            # Also finds a key recorded earlier in this same batch: its twin replays it.
            record = self.records.get(key)
            if record is not None:
                if record.expires_at > now:
                    replay = replay_of(record, req.fingerprint)
                    return Submitted(replay.job_id or "", replay.status_code, replay.response, True)
                # Expired, or a claim whose request died: this submit takes the key over.
                self.writes.expired_records.append(record.id)
                del self.records[key]

        engine = req.engine or self.runtime.engines.resolve(req.model, principal.mode)
        credits = 0 if req.free else quote(req.model, req.units).credits
        used_key = (principal.workspace_id, charge.product if charge else "")
        if charge is not None and self.used.get(used_key, 0) + charge.amount > charge.limit:
            raise charge.exceeded(principal.plan, now)
        account = self.accounts.get(principal.workspace_id)
        if credits > 0:
            if account is None:
                raise NotFound("workspace has no credit account")
            available = account[0] - account[1]
            if available < credits:
                raise InsufficientCredits(
                    f"this needs {credits} credits and {available} are available",
                    required=credits,
                    available=available,
                    suggestion=TOP_UP_SUGGESTION,
                )
            account[1] += credits
            self.writes.held[principal.workspace_id] += credits
        if charge is not None:
            self.used[used_key] = self.used.get(used_key, 0) + charge.amount
            quota_key = (principal.workspace_id, charge.product, charge.day, charge.limit)
            self.writes.quota[quota_key] += charge.amount

        job_id = new_id()
        hold = _hold_row(principal.workspace_id, credits, job_id)
        values = self._job_row(item, job_id, engine, credits, charge, hold["id"])
        accepted = Accepted(job_id, req.public_id, principal.workspace_id, now, hold["id"])
        submitted = Submitted(job_id, req.status_code, item.render(accepted), False)

        writes = self.writes
        writes.jobs.append(values)
        writes.holds.append(hold)
        writes.events.append(
            {"job_id": job_id, "seq": 1, "type": "status", "data": dict(_QUEUED), "created_at": now}
        )
        writes.notes += [("events", job_id, "1"), ("queue", "", job_id)]
        for asset in req.input_assets:
            asset.job_id, asset.workspace_id, asset.created_at = job_id, principal.workspace_id, now
        writes.assets += req.input_assets
        endpoints = self.endpoints.get(principal.workspace_id)
        # A new job has no outputs yet; only workspace endpoints hear of a queued job.
        built = endpoints and build_message(
            self.runtime, endpoints, Job(**values), [], _QUEUED_WEBHOOK, now
        )
        if built:
            writes.webhooks.append(built)
            writes.notes.append(("webhooks", "", ""))
        if key is not None:
            record = Record(
                new_id(),
                "completed",
                req.fingerprint,
                req.status_code,
                submitted.body,
                job_id,
                now + RETENTION,
            )
            self.records[key] = record
            writes.records.append(
                {
                    **record._asdict(),
                    "workspace_id": key[0],
                    "surface": key[1],
                    "key": key[2],
                    "created_at": now,
                }
            )
        return submitted

    def _job_row(
        self,
        item: _Pending,
        job_id: str,
        engine: str,
        credits: int,
        charge: Charge | None,
        hold_id: str,
    ) -> dict[str, Any]:
        principal, req, now = item.principal, item.req, self.now
        catalog = self.runtime.catalog
        return {
            "id": job_id,
            "public_id": req.public_id,
            "workspace_id": principal.workspace_id,
            "api_key_id": principal.api_key_id,
            "surface": req.surface,
            "product": req.model.product,
            "model": req.model.id,
            "mode": principal.mode,
            "status": JobStatus.QUEUED,
            "params": {
                "prompt": req.prompt,
                "units": req.units.as_dict(),
                "input_urls": req.input_urls,
                "quota": charge.as_dict() if charge else None,
                **req.extra,
            },
            "progress": 0.0,
            "progress_message": None,
            "error": None,
            "engine": engine,
            "price_version": catalog.price_version,
            "credits_estimated": credits,
            "credits_held": credits,
            "credits_charged": 0,
            "usage_event_id": hold_id,
            "correlation_id": req.correlation_id,
            "metadata_": req.metadata,
            "webhook_url": req.webhook_url,
            "provider_task_id": None,
            "attempts": 0,
            "max_attempts": catalog.max_attempts_for(req.model),
            "lease_owner": None,
            "lease_expires_at": None,
            "fence": 0,
            "last_event_seq": 1,
            "cancel_requested": False,
            "run_after": now,
            "created_at": now,
            "started_at": None,
            "finished_at": None,
            "updated_at": now,
        }

    async def _write(self) -> None:
        writes = self.writes
        if not writes.jobs and not writes.expired_records:
            return
        store = self.store
        await store.delete_records(writes.expired_records)
        for (workspace_id, product, day, limit), amount in writes.quota.items():
            if not await store.consume_quota(workspace_id, product, day, amount, limit):
                raise _Raced(f"the {product} quota of {workspace_id} moved under this batch")
        await store.add_held(writes.held)
        await store.insert(LedgerEntry, writes.holds)
        await store.insert(Job, writes.jobs)
        await store.insert(JobEvent, writes.events)
        await store.insert(IdempotencyRecord, writes.records)
        await store.add_objects(writes.assets, writes.webhooks)
        await store.notify(writes.notes)


def _key(item: _Pending) -> Key | None:
    if not item.idempotent or not item.req.idempotency_key:
        return None
    return (item.principal.workspace_id, item.req.surface, item.req.idempotency_key)


def _hold_row(workspace_id: str, amount: int, job_id: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "workspace_id": workspace_id,
        "kind": "hold",
        "amount": amount,
        "entry_key": f"hold:{job_id}",
        "job_id": job_id,
        "note": "",
        # Ledger entries are stamped with the wall clock, like every other entry.
        "created_at": utcnow(),
    }
