"""The SQL of a submit batch, in two implementations behind one interface.

``CoreStore`` runs the repositories' prebuilt SQLAlchemy statements and serves PostgreSQL.
``SqliteStore`` runs the same statements, written out for SQLite, on a pooled connection's
``sqlite3`` handle with no session around it (``Database.sqlite_writer``): on this
machine a SQLAlchemy execution costs 40–300 µs of bookkeeping around a statement that SQLite
runs in under 10 µs, and a batch makes about ten of them, which is what an idle server pays
for every single submit. Values are converted by the columns' own SQLAlchemy processors, so
what is stored and read is identical on both paths; the tests run every batch case on both
databases.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.assets.models import Asset
from mediagate.clock import utcnow
from mediagate.credits.models import CreditAccount
from mediagate.credits.repository import CreditRepository
from mediagate.db.base import Base, insert_rows, sqlite_insert_rows
from mediagate.events.bus import LocalBus, Note
from mediagate.idempotency.models import IdempotencyRecord
from mediagate.idempotency.repository import IdempotencyRepository
from mediagate.plans.repository import QuotaRepository
from mediagate.webhooks.models import WebhookEndpoint, WebhookMessage
from mediagate.webhooks.repository import WebhookRepository

Key = tuple[str, str, str]  # workspace, surface, idempotency key


class Record(NamedTuple):
    """An idempotency record as a batch needs it."""

    id: str
    state: str
    fingerprint: str
    status_code: int | None
    response: dict[str, Any] | None
    job_id: str | None
    expires_at: datetime


class BatchStore(Protocol):
    async def records(self, keys: Collection[Key]) -> dict[Key, Record]: ...
    async def accounts(self, workspace_ids: Collection[str]) -> dict[str, tuple[int, int]]: ...
    async def quota_used(
        self, workspace_ids: Collection[str], day: str
    ) -> dict[tuple[str, str], int]: ...
    async def endpoints(
        self, workspace_ids: Collection[str]
    ) -> dict[str, list[WebhookEndpoint]]: ...
    async def delete_records(self, ids: Collection[str]) -> None: ...
    async def consume_quota(
        self, workspace_id: str, product: str, day: str, amount: int, limit: int
    ) -> bool: ...
    async def add_held(self, deltas: Mapping[str, int]) -> None: ...
    async def insert(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> None: ...
    async def add_objects(
        self, assets: Sequence[Asset], webhooks: Sequence[tuple[WebhookMessage, list[Any]]]
    ) -> None: ...
    async def notify(self, notes: Sequence[Note]) -> None: ...


class NeedsSession(Exception):
    """The batch has rows only the ORM writes (a request's files, webhook messages)."""


class CoreStore:
    """Through SQLAlchemy, in a session: PostgreSQL, and SQLite batches with ORM rows."""

    def __init__(self, session: AsyncSession, bus: LocalBus) -> None:
        self.session = session
        self.bus = bus

    async def records(self, keys: Collection[Key]) -> dict[Key, Record]:
        found = await IdempotencyRepository(self.session).find_many(keys)
        return {key: _record(row) for key, row in found.items()}

    async def accounts(self, workspace_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        return await CreditRepository(self.session).accounts_for_update(workspace_ids)

    async def quota_used(
        self, workspace_ids: Collection[str], day: str
    ) -> dict[tuple[str, str], int]:
        return await QuotaRepository(self.session).used_on(workspace_ids, day)

    async def endpoints(self, workspace_ids: Collection[str]) -> dict[str, list[WebhookEndpoint]]:
        return await WebhookRepository(self.session).enabled_endpoints_of(workspace_ids)

    async def delete_records(self, ids: Collection[str]) -> None:
        await IdempotencyRepository(self.session).delete_ids(ids)

    async def consume_quota(
        self, workspace_id: str, product: str, day: str, amount: int, limit: int
    ) -> bool:
        return await QuotaRepository(self.session).consume(
            workspace_id, product, day, amount, limit
        )

    async def add_held(self, deltas: Mapping[str, int]) -> None:
        await CreditRepository(self.session).add_held(deltas)

    async def insert(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        await insert_rows(self.session, model, rows)

    async def add_objects(
        self, assets: Sequence[Asset], webhooks: Sequence[tuple[WebhookMessage, list[Any]]]
    ) -> None:
        if assets:
            self.session.add_all(assets)
            await self.session.flush()
        for message, deliveries in webhooks:
            await WebhookRepository(self.session).add_message(message, deliveries)

    async def notify(self, notes: Sequence[Note]) -> None:
        await self.bus.notify_many(self.session, notes)


def _record(row: Any) -> Record:
    return Record(
        row.id,
        row.state,
        row.fingerprint,
        row.status_code,
        row.response,
        row.job_id,
        row.expires_at,
    )


class SqliteStore:
    """Plain ``sqlite3`` calls inside ``Database.sqlite_writer``; notifications wait for the
    caller to commit (``committed_notes``)."""

    def __init__(self, conn: sqlite3.Connection, dialect: Any) -> None:
        self.conn = conn
        self.committed_notes: list[Note] = []
        self._expires, self._response, self._stamp = _processors(dialect)
        self.dialect = dialect

    def _rows(self, sql: str, params: Sequence[Any]) -> list[Any]:
        return self.conn.execute(sql, params).fetchall()

    async def records(self, keys: Collection[Key]) -> dict[Key, Record]:
        if not keys:
            return {}
        # All three columns of the unique index, so that it is searched rather than scanned.
        workspaces, surfaces, names = ({k[i] for k in keys} for i in range(3))
        rows = self._rows(
            "SELECT workspace_id, surface, key, id, state, fingerprint, status_code, response,"
            " job_id, expires_at FROM idempotency_records"
            f" WHERE workspace_id IN ({_marks(workspaces)}) AND surface IN ({_marks(surfaces)})"
            f" AND key IN ({_marks(names)})",
            [*workspaces, *surfaces, *names],
        )
        found = {
            (ws, surface, key): Record(
                id_,
                state,
                fingerprint,
                status,
                _apply(self._response, response),
                job_id,
                _apply(self._expires, expires),
            )
            for ws, surface, key, id_, state, fingerprint, status, response, job_id, expires in rows
        }
        return {key: found[key] for key in keys if key in found}

    async def accounts(self, workspace_ids: Collection[str]) -> dict[str, tuple[int, int]]:
        rows = self._rows(
            "SELECT workspace_id, balance, held FROM credit_accounts"
            f" WHERE workspace_id IN ({_marks(workspace_ids)})",
            list(workspace_ids),
        )
        return {ws: (balance, held) for ws, balance, held in rows}

    async def quota_used(
        self, workspace_ids: Collection[str], day: str
    ) -> dict[tuple[str, str], int]:
        rows = self._rows(
            "SELECT workspace_id, product, used FROM quota_usage"
            f" WHERE workspace_id IN ({_marks(workspace_ids)}) AND day = ?",
            [*workspace_ids, day],
        )
        return {(ws, product): used for ws, product, used in rows}

    async def endpoints(self, workspace_ids: Collection[str]) -> dict[str, list[WebhookEndpoint]]:
        rows = self._rows(
            "SELECT 1 FROM webhook_endpoints"
            f" WHERE enabled = 1 AND workspace_id IN ({_marks(workspace_ids)}) LIMIT 1",
            list(workspace_ids),
        )
        if rows:  # a queued job is announced to them: the ORM writes those messages
            raise NeedsSession
        return {}

    async def delete_records(self, ids: Collection[str]) -> None:
        if ids:
            self.conn.execute(
                f"DELETE FROM idempotency_records WHERE id IN ({_marks(ids)})", list(ids)
            )

    async def consume_quota(
        self, workspace_id: str, product: str, day: str, amount: int, limit: int
    ) -> bool:
        if amount > limit:
            return False
        cursor = self.conn.execute(
            "INSERT INTO quota_usage (workspace_id, product, day, used) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (workspace_id, product, day) DO UPDATE SET used = used + ?"
            " WHERE used + ? <= ?",
            (workspace_id, product, day, amount, amount, amount, limit),
        )
        return cursor.rowcount == 1

    async def add_held(self, deltas: Mapping[str, int]) -> None:
        stamp = _apply(self._stamp, utcnow())
        self.conn.executemany(
            "UPDATE credit_accounts SET held = held + ?, updated_at = ? WHERE workspace_id = ?",
            [(delta, stamp, ws) for ws, delta in deltas.items() if delta],
        )

    async def insert(self, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            sqlite_insert_rows(self.conn, self.dialect, model, rows)

    async def add_objects(
        self, assets: Sequence[Asset], webhooks: Sequence[tuple[WebhookMessage, list[Any]]]
    ) -> None:
        if assets or webhooks:
            raise NeedsSession

    async def notify(self, notes: Sequence[Note]) -> None:
        self.committed_notes += notes


@functools.cache
def _processors(dialect: Any) -> tuple[Any, Any, Any]:
    """The conversions the store's own statements need, built once per dialect."""
    records = IdempotencyRecord.__table__.c
    return (
        _result_processor(records.expires_at, dialect),
        _result_processor(records.response, dialect),
        _bind_processor(CreditAccount.__table__.c.updated_at, dialect),
    )


def _result_processor(column: Any, dialect: Any) -> Any:
    return column.type.dialect_impl(dialect).result_processor(dialect, None)


def _bind_processor(column: Any, dialect: Any) -> Any:
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def _marks(values: Collection[Any]) -> str:
    return ", ".join("?" * len(values))


def _apply(process: Any, value: Any) -> Any:
    return value if process is None or value is None else process(value)
