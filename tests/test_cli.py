"""The mediagate CLI against the same database a running server uses."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Server


def test_workspace_key_and_credit_commands(server: Server) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    assert "created" in server.cli(
        "workspaces", "create", name, "--plan", "free", "--credits", "25"
    )
    assert name in server.cli("workspaces", "list")
    key = server.cli(
        "keys",
        "create",
        "--workspace",
        name,
        "--scopes",
        "generate,chat",
        "--mode",
        "sandbox",
        "--name",
        "ci",
    ).strip()
    assert key.startswith("mg_test_")
    listing = server.cli("keys", "list", "--workspace", name)
    assert key[:16] in listing and "generate,chat" in listing and key not in listing
    client = server.client(key)
    assert client.get("/v1/credits/balance").json()["data"]["balance"] == 25
    server.cli("credits", "grant", "--workspace", name, "75")
    assert "balance 100" in server.cli("credits", "balance", "--workspace", name)
    live = server.cli("keys", "create", "--workspace", name).strip()
    assert live.startswith("mg_live_")


def test_cli_refuses_bad_input(server: Server) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    server.cli("workspaces", "create", name)
    for args in (
        ["workspaces", "create", name],
        ["workspaces", "create", "x", "--plan", "gold"],
        ["keys", "create", "--workspace", name, "--scopes", "generate,root"],
        ["keys", "create", "--workspace", name, "--mode", "test"],
        ["keys", "create", "--workspace", "no-such-workspace"],
        ["credits", "grant", "--workspace", name, "0"],
    ):
        with pytest.raises(AssertionError, match="failed"):
            server.cli(*args)


def test_api_key_is_stored_only_as_a_hash(server: Server) -> None:
    import asyncio

    from sqlalchemy import select

    from mediagate.auth.models import ApiKey
    from mediagate.db.database import Database

    t = server.tenant()

    async def stored() -> list[tuple[str, str]]:
        db = Database(server.settings.resolved_database_url)
        try:
            async with db.reader() as session:
                rows = await session.execute(select(ApiKey.key_hash, ApiKey.prefix))
                return [(h, p) for h, p in rows]
        finally:
            await db.dispose()

    rows = asyncio.run(stored())
    assert all(t.key not in h for h, _ in rows)
    assert any(p == t.key[:16] for _, p in rows)
