"""The inline SQLite driver: it never blocks the event loop while another process writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from mediagate.db.database import Database
from mediagate.db.migrate import upgrade


async def test_waiting_for_the_write_lock_does_not_block_the_loop(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    db = Database(url)
    other = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    release_after = 0.3
    threading.Timer(release_after, other.rollback).start()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        async with db.writer() as session:
            await session.execute(text("CREATE TABLE probe (x INTEGER)"))
        waited = time.monotonic() - started
    finally:
        task.cancel()
        other.close()
        await db.dispose()
    assert waited >= release_after * 0.9
    assert ticks >= 10  # the loop kept running while we waited for the lock


async def test_reads_and_writes_round_trip(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    db = Database(url)
    try:
        async with db.writer() as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            await session.execute(text("INSERT INTO t VALUES (1), (2), (3)"))
        async with db.reader() as session:
            assert (await session.execute(text("SELECT sum(x) FROM t"))).scalar() == 6
        try:
            async with db.writer() as session:
                await session.execute(text("INSERT INTO t VALUES (10)"))
                raise RuntimeError("roll back")
        except RuntimeError:
            pass
        async with db.reader() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 3
    finally:
        await db.dispose()
