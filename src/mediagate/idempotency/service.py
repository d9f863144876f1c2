"""Idempotency keys, implemented once for every job-creating surface.

A key lives in ``(workspace, surface, key)`` and goes through two states:

1. ``in_flight`` — committed on its own, before any work starts (``begin``). A retry that
   arrives now gets 409 ``idempotency_key_in_use``; an in-flight record whose owner died is
   taken over once its short lease (``expires_at``) has passed.
2. ``completed`` — written in the same transaction as the job it guards (``settle``), with the
   response to replay byte for byte for 24 hours. A retry with another body gets 409
   ``idempotency_key_mismatch``.

A request that fails before it creates anything (validation, no credits, quota) drops its
in-flight record (``abandon``), so a corrected retry with the same key goes through.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.errors import Conflict
from mediagate.idempotency.models import IdempotencyRecord
from mediagate.idempotency.repository import IdempotencyRepository

RETENTION = timedelta(hours=24)


def fingerprint(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Replay:
    status_code: int
    response: dict[str, Any]
    job_id: str | None


@dataclass(frozen=True)
class Claim:
    """What ``begin`` hands back: a replay of an earlier outcome, or our own fresh record."""

    replay: Replay | None = None
    record_id: str | None = None


class StoredOutcome(Protocol):
    """A record as the ORM loads it, or a plain row of its table."""

    @property
    def state(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def status_code(self) -> int | None: ...
    @property
    def response(self) -> dict[str, Any] | None: ...
    @property
    def job_id(self) -> str | None: ...


def replay_of(record: StoredOutcome, print_: str) -> Replay:
    """The stored outcome to send again, or 409 while it is in flight or for another body."""
    if record.state != "completed" or record.response is None:
        raise Conflict(
            "a request with this idempotency key is still being processed",
            code="idempotency_key_in_use",
        )
    if record.fingerprint != print_:
        raise Conflict(
            "this idempotency key was already used with a different request body",
            code="idempotency_key_mismatch",
        )
    return Replay(record.status_code or 200, record.response, record.job_id)


class IdempotencyService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = IdempotencyRepository(session)

    async def begin(
        self,
        workspace_id: str,
        surface: str,
        key: str,
        print_: str,
        *,
        now: datetime,
        lease: timedelta,
    ) -> Claim:
        """Replay the key's outcome, or claim it as in flight for ``lease``. Commit right after,
        before doing the work. 409 on a body mismatch or while another request holds it."""
        record = await self.repo.find(workspace_id, surface, key)
        if record is not None:
            if record.expires_at > now:
                return Claim(replay=replay_of(record, print_))
            # Expired, or an in-flight claim whose owner never finished: start afresh.
            await self.repo.session.delete(record)
            await self.repo.session.flush()
        fresh = IdempotencyRecord(
            workspace_id=workspace_id,
            surface=surface,
            key=key,
            fingerprint=print_,
            state="in_flight",
            created_at=now,
            expires_at=now + lease,
        )
        # A twin that claimed it between our read and this insert makes the insert fail on
        # the unique key; the caller retries ``begin`` in a new transaction and meets it.
        await self.repo.add(fresh)
        return Claim(record_id=fresh.id)

    async def settle(
        self,
        record_id: str,
        *,
        now: datetime,
        status_code: int,
        response: dict[str, Any],
        job_id: str | None,
    ) -> None:
        """Store the outcome of the request that claimed ``record_id``. Raises Conflict if the
        claim was lost (its lease ran out and a retry took the key over)."""
        if not await self.repo.settle(
            record_id,
            status_code=status_code,
            response=response,
            job_id=job_id,
            expires_at=now + RETENTION,
        ):
            raise Conflict(
                "this request took longer than its idempotency claim; retry it",
                code="idempotency_key_in_use",
            )

    async def abandon(self, record_id: str) -> None:
        """Drop an in-flight claim whose request failed before creating anything."""
        await self.repo.remove(record_id)
