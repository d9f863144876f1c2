"""Checkpoints on SQLite: under writes that never pause, the WAL still starts over."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from mediagate.db.database import Database
from mediagate.db.migrate import upgrade


async def _probe_database(path: Path) -> Database:
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    db = Database(url)
    async with db.sqlite_writer() as (conn, _):
        conn.execute("CREATE TABLE probe (payload BLOB)")
    return db


async def _write(db: Database) -> None:
    async with db.sqlite_writer() as (conn, _):
        conn.execute("INSERT INTO probe VALUES (?)", (os.urandom(3000),))


def _wal_generation(path: Path) -> int:
    """The WAL header's checkpoint sequence number: SQLite adds one each time the WAL starts
    over (the first frame written after every frame was copied back)."""
    with open(f"{path}-wal", "rb") as wal:
        return int.from_bytes(wal.read(16)[12:16], "big")


async def _round_among_writes(db: Database, path: Path, restart_frames: int) -> bool:
    """One checkpoint round while this process keeps writing; returns whether the WAL started
    over (a write does that if it finds every frame copied back)."""
    for _ in range(300):  # two or more pages a row: well over 200 frames
        await _write(db)
    before = _wal_generation(path)
    round_ = asyncio.create_task(db.checkpoint(restart_frames))
    while not round_.done():
        await _write(db)
        await asyncio.sleep(0)
    await round_
    await _write(db)
    return _wal_generation(path) > before


async def test_a_round_over_the_threshold_starts_the_wal_over_while_writes_go_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.sqlite"
    db = await _probe_database(path)
    try:
        # The writes made while the round copies frames back keep a PASSIVE checkpoint from
        # finishing, so the WAL would only grow; the held-back second round finishes it.
        assert await _round_among_writes(db, path, restart_frames=200)
        # The scenario is the one that needs it: a PASSIVE round alone, among the same writes,
        # leaves the WAL growing (at least once in a few tries: the thread may win the race).
        passive_only = [await _round_among_writes(db, path, 10**9) for _ in range(8)]
        assert False in passive_only, passive_only
    finally:
        await db.dispose()


async def test_the_wal_stays_bounded_under_steady_writes(tmp_path: Path) -> None:
    path = tmp_path / "b.sqlite"
    db = await _probe_database(path)
    checkpoints = asyncio.create_task(db.checkpoint_forever(every_seconds=0.05, restart_frames=200))
    largest, written = 0, 0
    deadline = time.monotonic() + 1.0
    try:
        # A write every millisecond: a checkpoint (with its fsyncs) never finds the WAL quiet.
        while time.monotonic() < deadline:
            await _write(db)
            written += 3000
            largest = max(largest, os.stat(f"{path}-wal").st_size)
            await asyncio.sleep(0.001)
    finally:
        checkpoints.cancel()
        await asyncio.gather(checkpoints, return_exceptions=True)
        await db.dispose()
    # 200 frames of 4 KiB, and what a round of writes adds: far less than was written.
    assert largest < 4 * 1024 * 1024, (largest, written)
