"""The engine wrapper: one per process, with separate read and write units of work.

SQLite allows one writer at a time. Write transactions therefore start with ``BEGIN IMMEDIATE``
(so a reader never has to upgrade to a writer and fail with SQLITE_BUSY) and, inside one process,
queue on an asyncio lock instead of spinning in SQLite's busy handler. Reads run concurrently in
WAL mode. PostgreSQL needs neither: its row locks and ``SKIP LOCKED`` do the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from mediagate.auth.cache import PrincipalCache
from mediagate.db import sqlite_inline

log = logging.getLogger("mediagate.db")
_IMMEDIATE = "mediagate_immediate"
# A WAL longer than this (256 MiB of 4 KiB pages) is checkpointed with the writers held back,
# so that it starts over (see Database.checkpoint). Only sustained heavy writes get
# there: about six seconds of a saturated server.
WAL_RESTART_FRAMES = 65_536
_AFTER_COMMIT = "mediagate_after_commit"
_AUTH_EPOCH = "SELECT value FROM auth_epoch WHERE id = 1"
T = TypeVar("T")


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Run ``callback`` after this write session commits; never if it rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


class Database:
    """Owns the engine and hands out sessions; the caller's unit of work commits or rolls back.

    >>> db = Database("sqlite+aiosqlite:///:memory:")  # doctest: +SKIP
    >>> async with db.writer() as session: ...          # doctest: +SKIP
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {"echo": echo}
        if self.is_sqlite:
            kwargs["async_creator"] = sqlite_inline.creator(make_url(url).database or ":memory:")
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._read = async_sessionmaker(self.engine, expire_on_commit=False)
        write_bind = (
            self.engine.execution_options(**{_IMMEDIATE: True}) if self.is_sqlite else self.engine
        )
        self._write = async_sessionmaker(write_bind, expire_on_commit=False)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        # API-key principals of this process, valid while the auth epoch stands still.
        self.principals = PrincipalCache()
        path = make_url(url).database if self.is_sqlite else None
        # The database file; None for an in-memory database (one per connection).
        self._file = path if path and path != ":memory:" else None
        self._epoch_conn: sqlite3.Connection | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._epoch_this_turn = _ThisTurn()
        self._epoch_reads = _NextRead(self._server_auth_epoch)

    @contextlib.asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session:
            yield session

    @contextlib.asynccontextmanager
    async def writer(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on any exception. Callbacks
        registered with ``after_commit`` run once the commit succeeded (and the lock is free)."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._write() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise
            callbacks = session.info.pop(_AFTER_COMMIT, [])
        for callback in callbacks:
            callback()

    @contextlib.asynccontextmanager
    async def sqlite_writer(self) -> AsyncIterator[tuple[sqlite3.Connection, Any]]:
        """SQLite only: a write transaction on a ``sqlite3`` connection with no session around
        it (a session costs more than a small transaction's statements), and the dialect that
        converts values for it. Commits on success.

        A database file gets a connection of its own for this, kept open: checking one out of
        the pool and back cost more than the BEGIN and COMMIT of a small transaction."""
        assert self._write_lock is not None, "SQLite only"
        async with self._write_lock:
            if self._file is None:  # in memory: the pool's connection is the database
                async with self.engine.connect() as connection:
                    driver = (await connection.get_raw_connection()).driver_connection
                    assert isinstance(driver, sqlite_inline.InlineConnection)
                    async with _immediate(driver.sqlite) as raw:
                        yield raw, self.engine.dialect
                return
            if self._writer_conn is None:
                self._writer_conn = sqlite_inline.connect(self._file)
            async with _immediate(self._writer_conn) as raw:
                yield raw, self.engine.dialect

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def auth_epoch(self) -> int | None:
        """The auth epoch now (see ``mediagate.auth.cache``), or None where it cannot be read
        cheaply and at once: then nothing may be served from the cache.

        Callers in the same turn of the event loop share one read. It was made after each of
        their requests had arrived, so none of them misses a change made before it arrived.
        A read costs about 15 µs on SQLite after any commit (a new read transaction), and the
        submit batcher commits all the time. On PostgreSQL a read is a round trip, and callers
        that arrive while one is under way share the next (see ``_NextRead``)."""
        if self._epoch_this_turn.fresh:
            return self._epoch_this_turn.value
        value = self._sqlite_auth_epoch() if self.is_sqlite else await self._epoch_reads.join()
        self._epoch_this_turn.keep(value)
        return value

    async def _server_auth_epoch(self) -> int | None:
        try:
            async with self.engine.connect() as conn:
                read = (await conn.exec_driver_sql(_AUTH_EPOCH)).scalar()
        except DBAPIError as exc:
            log.debug("auth epoch unreadable: %s", exc)
            return None
        return None if read is None else int(read)

    def _sqlite_auth_epoch(self) -> int | None:
        # A connection of its own, in autocommit: each statement sees the latest commit in WAL
        # mode, and a read costs microseconds inline. busy_timeout 0: never wait on the loop.
        if self._file is None:  # an in-memory database is one per connection
            return None
        try:
            if self._epoch_conn is None:
                self._epoch_conn = sqlite3.connect(
                    self._file, timeout=0, isolation_level=None, check_same_thread=False
                )
            # fetchall, not fetchone: it finishes the statement, which ends the read.
            rows = self._epoch_conn.execute(_AUTH_EPOCH).fetchall()
        except sqlite3.Error as exc:  # busy, or a database not migrated yet
            log.debug("auth epoch unreadable: %s", exc)
            return None
        return int(rows[0][0]) if rows else None

    async def dispose(self) -> None:
        for conn in (self._epoch_conn, self._writer_conn):
            if conn is not None:
                conn.close()
        self._epoch_conn = self._writer_conn = None
        await self.engine.dispose()

    async def checkpoint_forever(
        self, every_seconds: float = 1.0, restart_frames: int = WAL_RESTART_FRAMES
    ) -> None:
        """SQLite only: a checkpoint round (see ``checkpoint``) every ``every_seconds``, for as
        long as the process serves. A process that stops leaves the rest to the next."""
        if self._file is None:
            return
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.checkpoint(restart_frames)
            except sqlite3.Error as exc:  # e.g. busy: try again next round
                log.debug("checkpoint skipped: %s", exc)

    async def checkpoint(self, restart_frames: int = WAL_RESTART_FRAMES) -> None:
        """SQLite only: copy the WAL back into the database file on a helper thread, and keep
        the WAL from growing without end.

        A PASSIVE checkpoint never blocks writers or readers, but under steady writes it never
        catches up either, and SQLite only starts the WAL file over when a writer finds every
        frame copied back: the file grew by tens of MB a second under load (and every frame
        copied, fsynced). So once the WAL holds more than ``restart_frames`` frames, a second
        round runs while this process's writers wait: it only has the frames written during
        the first (about 10 ms of waiting at 1,600 submits a second), and the next write starts
        the WAL over."""
        if self._file is None:
            return
        assert self._write_lock is not None
        frames = await asyncio.to_thread(_checkpoint, self._file)
        if frames > restart_frames:
            async with self._write_lock:
                await asyncio.to_thread(_checkpoint, self._file)


class _NextRead(Generic[T]):
    """Concurrent callers share reads: a caller joins the next read to start, never one
    already under way (it may have been made before the caller arrived). So at most one read
    runs at a time, and one more waits for it.

    Without it, under load every request that arrived in its own turn of the loop checked out
    a connection for its own epoch read: 32 concurrent clients kept more connections busy than
    the pool holds, and PostgreSQL spent most of its time starting and ending the overflow's
    sessions (bench/RESULTS.md)."""

    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next: asyncio.Future[T] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def join(self) -> T:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # what a loop that has ended left behind is no use
            self._loop, self._next, self._reader = loop, None, None
        if self._next is None:
            self._next = loop.create_future()
        if self._reader is None or self._reader.done():
            self._reader = loop.create_task(self._run())
        # A caller that goes away leaves the read to the others.
        return await asyncio.shield(self._next)

    async def _run(self) -> None:
        while self._next is not None:
            waiting, self._next = self._next, None
            try:
                value = await self._read()
            except asyncio.CancelledError:
                for future in (waiting, self._next):
                    if future is not None:
                        future.cancel()
                self._next = None
                raise
            except Exception as exc:
                waiting.set_exception(exc)
            else:
                waiting.set_result(value)


class _ThisTurn:
    """A value that holds until the running event loop's next turn."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self.value: Any = None

    @property
    def fresh(self) -> bool:
        # Another loop (a loop that stopped before the expiry ran, then a new one) reads anew.
        return self._loop is not None and self._loop is asyncio.get_running_loop()

    def keep(self, value: Any) -> None:
        self.value = value
        if not self.fresh:
            self._loop = asyncio.get_running_loop()
            # Callbacks scheduled now run after everything already due in this turn.
            self._loop.call_soon(self._expire)

    def _expire(self) -> None:
        self._loop = None


@contextlib.asynccontextmanager
async def _immediate(raw: sqlite3.Connection) -> AsyncIterator[sqlite3.Connection]:
    await sqlite_inline.begin_immediate(raw)
    try:
        yield raw
        await sqlite_inline.commit(raw)
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        raise


def _checkpoint(path: str) -> int:
    """A PASSIVE checkpoint; returns how many frames the WAL holds."""
    conn = sqlite3.connect(path, timeout=1)
    try:
        _busy, frames, _copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        conn.close()
    return int(frames)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the driver so that BEGIN is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in sqlite_inline.PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front. Readers run without an explicit transaction
        # (each statement sees the latest commit), which saves two round trips per request.
        if conn.get_execution_options().get(_IMMEDIATE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
