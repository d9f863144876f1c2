"""Idempotency keys, implemented once for every job-creating surface.

The record is written in the same transaction as the job it guards, under a unique
``(workspace, surface, key)``. A retry with the same body replays the stored response; a
different body is a 409. Two racing first requests meet at the unique constraint: the loser
rolls back and replays the winner's result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.clock import utcnow
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


class IdempotencyService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = IdempotencyRepository(session)

    async def replay(self, workspace_id: str, surface: str, key: str, print_: str) -> Replay | None:
        """The stored outcome for this key, or None if the key is new. 409 on a body mismatch."""
        record = await self.repo.find(workspace_id, surface, key)
        if record is None:
            return None
        if record.expires_at < utcnow():
            # An expired key may be used afresh: clear it so that ``record`` can insert.
            await self.repo.session.delete(record)
            await self.repo.session.flush()
            return None
        if record.fingerprint != print_:
            raise Conflict(
                "this idempotency key was already used with a different request body",
                code="idempotency_key_mismatch",
            )
        if record.state != "completed" or record.response is None:
            raise Conflict(
                "a request with this idempotency key is still being processed",
                code="idempotency_key_in_use",
            )
        return Replay(record.status_code or 200, record.response, record.job_id)

    async def record(
        self,
        workspace_id: str,
        surface: str,
        key: str,
        print_: str,
        *,
        status_code: int,
        response: dict[str, Any],
        job_id: str | None,
    ) -> None:
        """Store the outcome; call ``replay`` first in the same transaction. If a concurrent
        twin committed first, the insert fails on the unique key and the caller replays it."""
        now = utcnow()
        await self.repo.add(
            IdempotencyRecord(
                workspace_id=workspace_id,
                surface=surface,
                key=key,
                fingerprint=print_,
                state="completed",
                status_code=status_code,
                response=response,
                job_id=job_id,
                created_at=now,
                expires_at=now + RETENTION,
            )
        )
