"""The auth epoch: triggers bump it on every update or delete of keys, members and workspaces,
cascaded deletes included, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from mediagate.auth.service import ApiKeyService
from mediagate.catalog.loader import load_catalog
from mediagate.db import migrate
from mediagate.db.database import Database, _NextRead
from mediagate.workspaces.service import MemberService, WorkspaceService
from tests.conftest import database_url

BACKENDS = pytest.mark.parametrize("backend", ["sqlite", "postgres"])


async def epoch(db: Database) -> int:
    async with db.reader() as session:
        value = (await session.execute(text("SELECT value FROM auth_epoch WHERE id = 1"))).scalar()
    return int(value)


async def write(db: Database, sql: str, **params: Any) -> None:
    async with db.writer() as session:
        await session.execute(text(sql), params)


async def count(db: Database, sql: str, **params: Any) -> int:
    async with db.reader() as session:
        return int((await session.execute(text(sql), params)).scalar_one())


async def tenant(db: Database) -> dict[str, str]:
    """A workspace, its owner, a second member and a key for each member."""
    async with db.writer() as session:
        ws, owner = await WorkspaceService(session, load_catalog()).create(uuid.uuid4().hex[:10])
        bot = await MemberService(session).add(ws.id, "bot")
        owner_key, _ = await ApiKeyService(session).create(ws.id)
        bot_key, _ = await ApiKeyService(session).create(ws.id, member_id=bot.id)
    return {
        "ws": ws.id,
        "owner": owner.id,
        "bot": bot.id,
        "key": owner_key.id,
        "bot_key": bot_key.id,
    }


@BACKENDS
async def test_updates_and_deletes_bump_the_epoch_inserts_do_not(
    backend: str, tmp_path: Path
) -> None:
    with database_url(backend, tmp_path) as url:
        db = Database(url)
        try:
            ids = await tenant(db)
            assert await epoch(db) == 0  # only inserts so far
            for sql in (
                "UPDATE api_keys SET name = 'renamed' WHERE id = :key",
                "UPDATE members SET permissions = '[]' WHERE id = :owner",
                "UPDATE workspaces SET plan = 'pro' WHERE id = :ws",
                "DELETE FROM api_keys WHERE id = :key",
                "DELETE FROM members WHERE id = :owner",
                "DELETE FROM workspaces WHERE id = :ws",
            ):
                before = await epoch(db)
                await write(db, sql, **{k: v for k, v in ids.items() if f":{k}" in sql})
                assert await epoch(db) > before, sql
        finally:
            await db.dispose()


@BACKENDS
async def test_cascaded_deletes_bump_the_epoch(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url:
        db = Database(url)
        try:
            ids = await tenant(db)
            before = await epoch(db)
            # The bot's key goes with the bot: its own trigger fires as well as the member's.
            await write(db, "DELETE FROM members WHERE id = :bot", bot=ids["bot"])
            assert (
                await count(db, "SELECT count(*) FROM api_keys WHERE id = :k", k=ids["bot_key"])
                == 0
            )
            assert await epoch(db) == before + 2

            before = await epoch(db)
            await write(db, "DELETE FROM workspaces WHERE id = :ws", ws=ids["ws"])
            assert (
                await count(
                    db, "SELECT count(*) FROM members WHERE workspace_id = :ws", ws=ids["ws"]
                )
                == 0
            )
            assert (
                await count(
                    db, "SELECT count(*) FROM api_keys WHERE workspace_id = :ws", ws=ids["ws"]
                )
                == 0
            )
            assert await epoch(db) >= before + 3  # the workspace, its owner, the owner's key
        finally:
            await db.dispose()


@BACKENDS
async def test_downgrade_removes_the_counter_and_its_triggers(backend: str, tmp_path: Path) -> None:
    with database_url(backend, tmp_path) as url:
        migrate.downgrade(url, "0006")
        db = Database(url)
        try:
            ids = await tenant(db)
            # Updates work without the table: no trigger is left behind to write to it.
            await write(db, "UPDATE workspaces SET plan = 'pro' WHERE id = :ws", ws=ids["ws"])
            await write(db, "DELETE FROM api_keys WHERE id = :key", key=ids["key"])
            assert await db.auth_epoch() is None
        finally:
            await db.dispose()
        migrate.upgrade(url)
        db = Database(url)
        try:
            assert await db.auth_epoch() == 0
            await write(db, "UPDATE workspaces SET plan = 'free' WHERE id = :ws", ws=ids["ws"])
            assert await db.auth_epoch() == 1
        finally:
            await db.dispose()


async def _turns(count: int = 3) -> None:
    """Let the tasks just started run up to where they wait."""
    for _ in range(count):
        await asyncio.sleep(0)


async def test_callers_join_the_next_read_never_one_under_way() -> None:
    gates: list[asyncio.Event] = []

    async def read() -> int:
        gates.append(asyncio.Event())
        await gates[-1].wait()
        return len(gates)

    reads = _NextRead(read)
    first = asyncio.create_task(reads.join())
    await _turns()
    assert len(gates) == 1  # under way
    later = [asyncio.create_task(reads.join()) for _ in range(5)]
    await _turns()
    assert len(gates) == 1  # they wait for the next read: this one may predate them
    gates[0].set()
    assert await first == 1
    await _turns()
    assert len(gates) == 2
    gates[1].set()
    assert await asyncio.gather(*later) == [2] * 5
    assert len(gates) == 2  # one read for the five


async def test_a_failed_read_fails_its_callers_only() -> None:
    outcomes = iter([OSError("gone"), 7])

    async def read() -> int:
        await asyncio.sleep(0)
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    reads = _NextRead(read)
    with pytest.raises(OSError):
        await reads.join()
    assert await reads.join() == 7


async def test_a_caller_that_goes_away_leaves_the_read_to_the_others() -> None:
    gate = asyncio.Event()

    async def read() -> str:
        await gate.wait()
        return "read"

    reads = _NextRead(read)
    leaving, staying = asyncio.create_task(reads.join()), asyncio.create_task(reads.join())
    await _turns()
    leaving.cancel()
    gate.set()
    assert await staying == "read"
    assert leaving.cancelled()


async def test_concurrent_requests_share_epoch_reads_on_postgres(tmp_path: Path) -> None:
    """Callers in many turns of the loop: a few reads, not one connection each; and a change
    committed before a caller arrived is what that caller sees."""
    with database_url("postgres", tmp_path) as url:
        db = Database(url)
        checkouts = 0

        def checked_out(*_: Any) -> None:
            nonlocal checkouts
            checkouts += 1

        event.listen(db.engine.sync_engine, "checkout", checked_out)
        try:
            before = await db.auth_epoch()
            assert before is not None

            async def caller(turns: int) -> int | None:
                for _ in range(turns):
                    await asyncio.sleep(0)
                return await db.auth_epoch()

            checkouts = 0
            seen = await asyncio.gather(*(caller(i) for i in range(50)))
            assert seen == [before] * 50
            assert checkouts <= 10, checkouts  # 36 with a read per caller
            await write(db, "UPDATE auth_epoch SET value = value + 1 WHERE id = 1")
            assert await caller(1) == before + 1
        finally:
            await db.dispose()
