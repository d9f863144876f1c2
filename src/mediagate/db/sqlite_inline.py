"""An aiosqlite-compatible connection that runs SQLite calls inline, on the event loop.

aiosqlite runs every call on a helper thread: creating a cursor, executing, fetching and
closing each cost a thread round trip (~100 us), four per statement, which made a job submit
cost ~5 ms of waiting. A SQLite statement on a local file takes tens of microseconds, so doing
it inline is far cheaper, provided nothing blocks: the write lock is taken with
``BEGIN IMMEDIATE`` and, when another process holds it, we retry with an ``asyncio.sleep``
(busy_timeout is 0) instead of letting SQLite sleep inside the loop.

SQLAlchemy's aiosqlite dialect drives it unchanged through ``create_async_engine(...,
async_creator=...)``; only the attributes that dialect uses are provided.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

BUSY_DEADLINE_SECONDS = 30.0

# Every connection of ours runs these first.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    # No busy waiting inside SQLite: it would block the event loop (we back off instead).
    "PRAGMA busy_timeout=0",
    "PRAGMA foreign_keys=ON",
    # Checkpoints copy the WAL into the database file and fsync it: too slow for the event
    # loop. The server runs them on a thread instead (Database.checkpoint_forever).
    "PRAGMA wal_autocheckpoint=0",
    # When the WAL starts over, a file that grew past this is cut back to it.
    "PRAGMA journal_size_limit=67108864",
)


def connect(path: str) -> sqlite3.Connection:
    """A configured autocommit connection (we emit BEGIN ourselves) for use on the loop."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "database is locked" in message or "database is busy" in message


async def _retry_busy(call: Callable[[], Any]) -> Any:
    """Run ``call``; while another process holds the lock, back off without blocking."""
    delay, deadline = 0.0005, time.monotonic() + BUSY_DEADLINE_SECONDS
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock of an autocommit connection, backing off while another holds it."""
    await _retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))


async def commit(conn: sqlite3.Connection) -> None:
    await _retry_busy(conn.commit)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        args = (sql,) if parameters is None else (sql, parameters)
        await _retry_busy(lambda: self._cursor.execute(*args))
        return self

    async def executemany(self, sql: str, seq: Iterable[Sequence[Any]]) -> InlineCursor:
        rows = list(seq)
        await _retry_busy(lambda: self._cursor.executemany(sql, rows))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue, which SQLAlchemy uses to set
    ``isolation_level``: the function runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed to the awaiting caller
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, path: str) -> None:
        # isolation_level=None: we emit BEGIN ourselves. check_same_thread=False because the
        # pool may finalize a connection from another thread; all use is on the loop.
        self._conn = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
        self._tx = _ImmediateQueue()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself, for callers that run statements directly."""
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        # SQLAlchemy enters it with ``await cursor.__aenter__()``, as aiosqlite's.
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await _retry_busy(self._conn.commit)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)


def creator(path: str) -> Callable[[], Any]:
    async def connect() -> InlineConnection:
        return InlineConnection(path)

    return connect
