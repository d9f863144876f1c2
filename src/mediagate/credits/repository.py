"""All SQL about credit accounts and ledger entries."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.clock import utcnow
from mediagate.credits.models import CreditAccount, LedgerEntry
from mediagate.db.base import UTCDateTime

_ACCOUNTS = cast(Table, CreditAccount.__table__)
# Built once: constructing a statement costs more than running it.
_LOCK_ACCOUNTS = (
    select(_ACCOUNTS.c.workspace_id, _ACCOUNTS.c.balance, _ACCOUNTS.c.held)
    .where(_ACCOUNTS.c.workspace_id.in_(bindparam("ids", expanding=True)))
    .with_for_update()
)
_ADD_HELD = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.workspace_id == bindparam("account"))
    .values(
        held=_ACCOUNTS.c.held + bindparam("delta"),
        updated_at=bindparam("at", type_=UTCDateTime()),
    )
)


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def account(self, workspace_id: str) -> CreditAccount | None:
        return await self.session.get(CreditAccount, workspace_id, populate_existing=True)

    async def accounts_for_update(
        self, workspace_ids: Collection[str]
    ) -> dict[str, tuple[int, int]]:
        """``(balance, held)`` of several accounts, locked until the transaction ends
        (PostgreSQL row locks; a SQLite writer already holds the database's write lock)."""
        connection = await self.session.connection()
        rows = await connection.execute(_LOCK_ACCOUNTS, {"ids": list(workspace_ids)})
        return {workspace_id: (balance, held) for workspace_id, balance, held in rows}

    async def add_held(self, deltas: Mapping[str, int]) -> None:
        """Raise the held total of each account by its delta: one statement for them all."""
        now = utcnow()
        rows = [{"account": ws, "delta": d, "at": now} for ws, d in deltas.items() if d]
        if rows:
            await (await self.session.connection()).execute(_ADD_HELD, rows)

    async def add_account(self, workspace_id: str) -> None:
        self.session.add(CreditAccount(workspace_id=workspace_id, balance=0, held=0))
        await self.session.flush()

    async def entry(self, entry_key: str) -> LedgerEntry | None:
        return await self.session.scalar(
            select(LedgerEntry).where(LedgerEntry.entry_key == entry_key)
        )

    async def add_entry(self, entry: LedgerEntry) -> LedgerEntry:
        self.session.add(entry)
        await self.session.flush()
        return entry

    async def change_balance(self, workspace_id: str, delta: int) -> None:
        await self.session.execute(
            update(CreditAccount)
            .where(CreditAccount.workspace_id == workspace_id)
            .values(balance=CreditAccount.balance + delta, updated_at=utcnow())
        )

    async def try_hold(self, workspace_id: str, amount: int) -> bool:
        """Atomically move ``amount`` into held if that much is available; no lock needed."""
        result = await self.session.execute(
            update(CreditAccount)
            .where(
                CreditAccount.workspace_id == workspace_id,
                CreditAccount.balance - CreditAccount.held >= amount,
            )
            .values(held=CreditAccount.held + amount, updated_at=utcnow())
        )
        return result.rowcount == 1  # type: ignore[attr-defined]

    async def settle_hold(self, workspace_id: str, held: int, charged: int) -> None:
        await self.session.execute(
            update(CreditAccount)
            .where(CreditAccount.workspace_id == workspace_id)
            .values(
                held=CreditAccount.held - held,
                balance=CreditAccount.balance - charged,
                updated_at=utcnow(),
            )
        )
