"""Ledger use cases. Every movement is an entry with a unique key, so retries never double up.

A job's money moves in three steps: ``hold`` its estimate at submit, then either ``capture``
what it actually cost (releasing the rest) or ``release`` it all on failure or cancel.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.credits.models import LedgerEntry
from mediagate.credits.repository import CreditRepository
from mediagate.errors import InsufficientCredits, InvalidRequest, NotFound

TOP_UP_SUGGESTION = "Use a cheaper model or ask the owner to top up."


@dataclass(frozen=True)
class Balance:
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


class CreditService:
    def __init__(self, session: AsyncSession) -> None:
        self.repo = CreditRepository(session)

    async def open_account(self, workspace_id: str) -> None:
        await self.repo.add_account(workspace_id)

    async def balance(self, workspace_id: str) -> Balance:
        account = await self.repo.account(workspace_id)
        if account is None:
            raise NotFound("workspace has no credit account")
        return Balance(balance=account.balance, held=account.held)

    async def grant(self, workspace_id: str, amount: int, *, key: str, note: str = "") -> bool:
        """Add credits once per ``key``; returns False when that grant was already made."""
        if amount <= 0:
            raise InvalidRequest("a grant must be a positive number of credits")
        if await self.repo.entry(key):
            return False
        await self.repo.add_entry(
            LedgerEntry(
                workspace_id=workspace_id, kind="grant", amount=amount, entry_key=key, note=note
            )
        )
        await self.repo.change_balance(workspace_id, amount)
        return True

    async def hold(self, workspace_id: str, amount: int, *, job_id: str) -> LedgerEntry:
        if amount > 0 and not await self.repo.try_hold(workspace_id, amount):
            current = await self.balance(workspace_id)
            raise InsufficientCredits(
                f"this needs {amount} credits and {current.available} are available",
                required=amount,
                available=current.available,
                suggestion=TOP_UP_SUGGESTION,
            )
        return await self.repo.add_entry(
            LedgerEntry(
                workspace_id=workspace_id,
                kind="hold",
                amount=amount,
                entry_key=f"hold:{job_id}",
                job_id=job_id,
            )
        )

    async def capture(self, workspace_id: str, *, job_id: str, held: int, charged: int) -> None:
        """Charge ``charged`` of a job's hold and release the rest."""
        if not 0 <= charged <= held:
            raise ValueError(f"charge {charged} outside the hold {held}")
        await self.repo.add_entry(
            LedgerEntry(
                workspace_id=workspace_id,
                kind="capture",
                amount=-charged,
                entry_key=f"capture:{job_id}",
                job_id=job_id,
            )
        )
        if held > charged:
            await self.repo.add_entry(
                LedgerEntry(
                    workspace_id=workspace_id,
                    kind="release",
                    amount=held - charged,
                    entry_key=f"release:{job_id}",
                    job_id=job_id,
                )
            )
        await self.repo.settle_hold(workspace_id, held, charged)

    async def release(self, workspace_id: str, *, job_id: str, held: int) -> None:
        await self.repo.add_entry(
            LedgerEntry(
                workspace_id=workspace_id,
                kind="release",
                amount=held,
                entry_key=f"release:{job_id}",
                job_id=job_id,
            )
        )
        await self.repo.settle_hold(workspace_id, held, 0)
