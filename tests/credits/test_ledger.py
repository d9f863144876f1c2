"""The ledger's own rules, on the real database (both backends)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mediagate.catalog.loader import load_catalog
from mediagate.credits.service import CreditService
from mediagate.db.database import Database
from mediagate.errors import InsufficientCredits
from mediagate.workspaces.service import WorkspaceService
from tests.conftest import database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_grant_hold_capture_release(backend: str, tmp_path: Path) -> None:
    async def scenario(url: str) -> None:
        db = Database(url)
        try:
            async with db.writer() as s:
                ws, _ = await WorkspaceService(s, load_catalog()).create("w", credits=100)
                credits = CreditService(s)
                assert not await credits.grant(ws.id, 100, key=f"initial-grant:{ws.id}")
                await credits.hold(ws.id, 60, job_id="j1")
                with pytest.raises(InsufficientCredits) as info:
                    await credits.hold(ws.id, 41, job_id="j2")
                assert info.value.details["available"] == 40
                await credits.hold(ws.id, 40, job_id="j3")
                assert (await credits.balance(ws.id)).available == 0
                await credits.capture(ws.id, job_id="j1", held=60, charged=45)
                await credits.release(ws.id, job_id="j3", held=40)
                balance = await credits.balance(ws.id)
                assert (balance.balance, balance.held, balance.available) == (55, 0, 55)
                with pytest.raises(ValueError):
                    await credits.capture(ws.id, job_id="j4", held=10, charged=11)
        finally:
            await db.dispose()

    with database_url(backend, tmp_path) as url:
        asyncio.run(scenario(url))
