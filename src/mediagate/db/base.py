"""Declarative base with a constraint naming convention (stable names for migrations)."""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from mediagate.db.sqlite_inline import InlineConnection

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC, also on SQLite (which stores naive text)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# The largest integer either database stores (BIGINT; SQLite's INTEGER): integer input that
# reaches a column or a LIMIT/OFFSET is bounded by it, so that a larger one is a 400 rather
# than a driver's overflow.
MAX_BIGINT = 2**63 - 1


class _RandomBytes:
    """Bytes from the OS's CSPRNG, fetched 4 KiB at a time: one ``getrandom`` call serves
    about 400 ids instead of one each (a submit makes three). Locked, because the CLI and
    helper threads make ids too; refilled after a fork, so that no two processes hand out
    the same bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._buffer, self._at = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            at = self._at
            if at + count > len(self._buffer):
                self._buffer, at = os.urandom(4096), 0
            self._at = at + count
            return self._buffer[at : at + count]


_random_bytes = _RandomBytes()


def new_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Ids that grow with time put each new row at the right edge of its indexes, so a transaction
    dirties a few pages instead of one per row (a batch of ten submits commits in less than
    half the time than with random UUIDs), and ids sort by creation.

    >>> import uuid
    >>> a, b = new_id(), new_id()
    >>> uuid.UUID(a).version, len(a), a[:8] <= b[:8]
    (7, 36, True)
    """
    r = _random_bytes.take(10)  # 80 bits; 74 are used
    millis = (time.time_ns() // 1_000_000 & (1 << 48) - 1).to_bytes(6, "big")
    # version 7 in the high nibble of byte 6, variant 0b10 in the top bits of byte 8
    h = (millis + bytes((0x70 | r[0] & 0x0F, r[1], 0x80 | r[2] & 0x3F)) + r[3:]).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


async def insert_rows(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """Insert ``rows`` (keyed by attribute name, every row with the same keys) with one
    ``executemany``. Column defaults are not applied; give every value.

    The ORM's unit of work and even Core's per-execution bookkeeping cost several times what
    the statement does, so on our inline SQLite connection the rows go to ``sqlite3`` directly,
    converted by the columns' own SQLAlchemy bind processors (the stored text is identical);
    elsewhere through a Core ``executemany``."""
    if not rows:
        return
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        driver = (await connection.get_raw_connection()).driver_connection
        if isinstance(driver, InlineConnection):
            sqlite_insert_rows(driver.sqlite, connection.dialect, model, rows)
            return
    statement, names = _insert_of(model)
    await connection.execute(
        statement, [{names[key]: value for key, value in row.items()} for row in rows]
    )


@functools.cache
def _insert_of(model: type[Base]) -> tuple[sa.Insert, dict[str, str]]:
    """The model's INSERT, built once, and its attribute -> column names."""
    names = {attr.key: attr.columns[0].name for attr in sa.inspect(model).column_attrs}
    return sa.insert(cast(sa.Table, model.__table__)), names


def sqlite_insert_rows(
    conn: sqlite3.Connection, dialect: sa.Dialect, model: type[Base], rows: Sequence[dict[str, Any]]
) -> None:
    """``insert_rows`` on a ``sqlite3`` connection (inside its current transaction)."""
    sql, fields = _sqlite_insert(model, tuple(rows[0]), dialect)
    params = [
        [row[key] if process is None else process(row[key]) for key, process in fields]
        for row in rows
    ]
    try:
        conn.executemany(sql, params)
    except sqlite3.Error as exc:  # raised as SQLAlchemy would, e.g. IntegrityError
        raise sa.exc.DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc


@functools.cache
def _sqlite_insert(
    model: type[Base], keys: tuple[str, ...], dialect: sa.Dialect
) -> tuple[str, list[tuple[str, Callable[[Any], Any] | None]]]:
    """``INSERT`` SQL for these attributes, and each one with its bind processor (or None)."""
    mapper = sa.inspect(model)
    columns = [mapper.column_attrs[key].columns[0] for key in keys]
    names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
    table = dialect.identifier_preparer.format_table(cast(sa.Table, model.__table__))
    sql = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    fields: list[tuple[str, Callable[[Any], Any] | None]] = []
    for key, column in zip(keys, columns, strict=True):
        process: Callable[[Any], Any] | None = column.type.dialect_impl(dialect).bind_processor(
            dialect
        )
        if process is not None and isinstance(column.type, (UTCDateTime, sa.DateTime)):
            process = _repeating(process)
        fields.append((key, process))
    return sql, fields


def _repeating(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``process`` that remembers its last value: the rows of a batch share their timestamps
    (one ``now``), and a datetime cannot change under us."""
    last: tuple[Any, Any] = (object(), None)

    def convert(value: Any) -> Any:
        nonlocal last
        seen, converted = last  # one read: a pair that belongs together
        if value is not seen:
            converted = process(value)
            last = (value, converted)
        return converted

    return convert
