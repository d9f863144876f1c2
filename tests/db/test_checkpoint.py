"""Checkpoints on SQLite: under writes that never pause, the WAL still starts over."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from mediagate.db.database import Database
from mediagate.db.migrate import upgrade


async def _largest_wal_under_steady_writes(path: Path, restart_frames: int) -> int:
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    db = Database(url)
    async with db.sqlite_writer() as (conn, _):
        conn.execute("CREATE TABLE probe (payload BLOB)")
    checkpoints = asyncio.create_task(
        db.checkpoint_forever(every_seconds=0.05, restart_frames=restart_frames)
    )
    wal, largest = f"{path}-wal", 0
    deadline = time.monotonic() + 1.5
    try:
        # A write every millisecond: a checkpoint (with its fsyncs) never finds the WAL quiet.
        while time.monotonic() < deadline:
            async with db.sqlite_writer() as (conn, _):
                conn.execute("INSERT INTO probe VALUES (?)", (os.urandom(3000),))
            largest = max(largest, os.stat(wal).st_size)
            await asyncio.sleep(0.001)
    finally:
        checkpoints.cancel()
        await asyncio.gather(checkpoints, return_exceptions=True)
        await db.dispose()
    return largest


async def test_a_long_wal_starts_over_under_steady_writes(tmp_path: Path) -> None:
    never = await _largest_wal_under_steady_writes(tmp_path / "a.sqlite", restart_frames=10**9)
    bounded = await _largest_wal_under_steady_writes(tmp_path / "b.sqlite", restart_frames=200)
    # Without the held-back round the WAL only grows (every write appends); with it the file
    # stays near the threshold: 200 frames of 4 KiB, and what a round of writes adds.
    assert never > 3 * bounded, (never, bounded)
    assert bounded < 4 * 1024 * 1024, bounded
