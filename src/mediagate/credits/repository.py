"""All SQL about credit accounts and ledger entries."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.clock import utcnow
from mediagate.credits.models import CreditAccount, LedgerEntry


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def account(self, workspace_id: str) -> CreditAccount | None:
        return await self.session.get(CreditAccount, workspace_id, populate_existing=True)

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
