"""API-key principals are served from the per-process cache until the auth epoch moves."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from mediagate.auth.cache import PrincipalCache
from mediagate.auth.principal import Principal
from mediagate.auth.service import ApiKeyService, authenticate_cached
from mediagate.catalog.loader import load_catalog
from mediagate.db import migrate
from mediagate.db.database import Database
from mediagate.errors import Unauthenticated
from mediagate.workspaces.service import MemberService, WorkspaceService
from tests.conftest import database_url

SIGNING_KEY = b"k" * 32


def principal(plan: str = "free") -> Principal:
    return Principal("ws", plan, "m", frozenset({"chat"}), "live", api_key_id="k")


def test_a_hit_needs_the_epoch_the_entry_was_loaded_at() -> None:
    cache = PrincipalCache()
    assert cache.get("h", 1) is None
    cache.put("h", 1, principal())
    assert cache.get("h", 1) == principal() and cache.hits == 1
    assert cache.get("h", 2) is None and len(cache) == 0  # the epoch moved: all dropped
    assert cache.misses == 2


def test_an_entry_loaded_before_a_newer_epoch_was_seen_is_not_kept() -> None:
    cache = PrincipalCache()
    assert cache.get("h", 1) is None  # request A reads epoch 1, starts loading
    assert cache.get("other", 2) is None  # request B reads epoch 2: a change committed
    cache.put("h", 1, principal())  # A's load may predate the change
    assert len(cache) == 0 and cache.get("h", 2) is None


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = PrincipalCache(max_entries=2)
    cache.get("a", 1)
    cache.put("a", 1, principal("a"))
    cache.put("b", 1, principal("b"))
    assert cache.get("a", 1) is not None  # b is now the least recently used
    cache.put("c", 1, principal("c"))
    assert len(cache) == 2 and cache.get("b", 1) is None and cache.get("a", 1) is not None


@dataclass
class Tenant:
    workspace_id: str
    bot_id: str
    owner_header: str
    bot_header: str


@pytest.fixture(params=["sqlite", "postgres"])
async def databases(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Database, Database]]:
    """The server's database object and another one on the same database, which stands for
    another process (the CLI): its changes reach the first only through the database."""
    with database_url(request.param, tmp_path) as url:
        server, other = Database(url), Database(url)
        try:
            yield server, other
        finally:
            await server.dispose()
            await other.dispose()


async def tenant(db: Database) -> Tenant:
    async with db.writer() as session:
        ws, _ = await WorkspaceService(session, load_catalog()).create(uuid.uuid4().hex[:10])
        bot = await MemberService(session).add(ws.id, "bot", permissions=["manage_keys"])
        _, owner_secret = await ApiKeyService(session).create(ws.id)
        _, bot_secret = await ApiKeyService(session).create(ws.id, member_id=bot.id)
    return Tenant(ws.id, bot.id, f"Bearer {owner_secret}", f"Bearer {bot_secret}")


async def write(db: Database, sql: str, **params: Any) -> None:
    async with db.writer() as session:
        await session.execute(text(sql), params)


async def cached(db: Database, header: str) -> Principal:
    """Authenticate twice; the second must come from the cache."""
    first = await authenticate_cached(db, header, SIGNING_KEY)
    hits = db.principals.hits
    second = await authenticate_cached(db, header, SIGNING_KEY)
    assert db.principals.hits == hits + 1 and second is first
    return second


async def test_a_key_is_looked_up_once(databases: tuple[Database, Database]) -> None:
    server, other = databases
    t = await tenant(other)
    assert (await cached(server, t.owner_header)).workspace_id == t.workspace_id
    for _ in range(5):
        await authenticate_cached(server, t.owner_header, SIGNING_KEY)
    assert server.principals.hits == 6 and server.principals.misses == 1


async def test_changes_made_elsewhere_apply_to_the_next_request(
    databases: tuple[Database, Database],
) -> None:
    server, other = databases
    t = await tenant(other)
    assert (await cached(server, t.owner_header)).plan == "free"
    await write(other, "UPDATE workspaces SET plan = 'pro' WHERE id = :ws", ws=t.workspace_id)
    assert (await authenticate_cached(server, t.owner_header, SIGNING_KEY)).plan == "pro"

    assert (await cached(server, t.bot_header)).permissions == {"manage_keys"}
    async with other.writer() as session:
        await MemberService(session).grant(t.workspace_id, "bot", "access_image_editor")
    bot = await authenticate_cached(server, t.bot_header, SIGNING_KEY)
    assert bot.permissions == {"manage_keys", "access_image_editor"}

    await cached(server, t.bot_header)
    await write(other, "DELETE FROM members WHERE id = :bot", bot=t.bot_id)
    with pytest.raises(Unauthenticated) as caught:
        await authenticate_cached(server, t.bot_header, SIGNING_KEY)
    assert caught.value.code == "invalid_api_key"

    await cached(server, t.owner_header)
    async with other.writer() as session:
        keys = await ApiKeyService(session).list(t.workspace_id)
        await ApiKeyService(session).revoke(t.workspace_id, keys[0].id)
    with pytest.raises(Unauthenticated):
        await authenticate_cached(server, t.owner_header, SIGNING_KEY)


async def test_a_deleted_workspace_stops_its_keys(databases: tuple[Database, Database]) -> None:
    server, other = databases
    t = await tenant(other)
    await cached(server, t.owner_header)
    await write(other, "DELETE FROM workspaces WHERE id = :ws", ws=t.workspace_id)
    with pytest.raises(Unauthenticated):
        await authenticate_cached(server, t.owner_header, SIGNING_KEY)


async def test_failures_are_not_cached(databases: tuple[Database, Database]) -> None:
    server, other = databases
    for _ in range(2):
        with pytest.raises(Unauthenticated) as caught:
            await authenticate_cached(server, "Bearer mg_test_" + "x" * 40, SIGNING_KEY)
        assert caught.value.code == "invalid_api_key"
    with pytest.raises(Unauthenticated) as caught:
        await authenticate_cached(server, None, SIGNING_KEY)
    assert caught.value.code == "missing_api_key"
    assert server.principals.hits == 0 and len(server.principals) == 0


async def test_without_a_readable_epoch_nothing_is_cached(tmp_path: Path) -> None:
    """A database from before the counter (or an in-memory one) is still served, uncached."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0006")
    db = Database(url)
    try:
        t = await tenant(db)
        for _ in range(3):
            await authenticate_cached(db, t.owner_header, SIGNING_KEY)
        assert db.principals.hits == 0 and len(db.principals) == 0
    finally:
        await db.dispose()

    memory = Database("sqlite+aiosqlite:///:memory:")
    try:
        assert await memory.auth_epoch() is None
    finally:
        await memory.dispose()


async def test_requests_started_in_one_turn_of_the_loop_share_one_epoch_read(
    tmp_path: Path,
) -> None:
    """The epoch is read again once the event loop has turned: whatever arrives later sees
    what was committed before it arrived; requests started together share the read."""
    path = tmp_path / "turns.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate.upgrade(url)
    db = Database(url)
    cli = sqlite3.connect(path)  # another process, writing without yielding to our loop
    try:
        before = await db.auth_epoch()
        assert before is not None
        with cli:
            cli.execute("UPDATE auth_epoch SET value = value + 1 WHERE id = 1")
        assert await db.auth_epoch() == before  # the same turn: the shared read
        await asyncio.sleep(0)
        assert await db.auth_epoch() == before + 1
    finally:
        cli.close()
        await db.dispose()
