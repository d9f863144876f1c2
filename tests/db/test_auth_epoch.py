"""The auth epoch: triggers bump it on every update or delete of keys, members and workspaces,
cascaded deletes included, on both databases."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mediagate.auth.service import ApiKeyService
from mediagate.catalog.loader import load_catalog
from mediagate.db import migrate
from mediagate.db.database import Database
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
