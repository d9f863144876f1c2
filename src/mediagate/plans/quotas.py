"""Daily quotas: counted when a job (or chat message) is accepted, given back when a job ends
without delivering anything, reset at 00:00 UTC.

Images count per image (an image agent run counts as one image), videos per video, chat per
message. A plan's ``None`` means unlimited; a product the plan does not name is unlimited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediagate.catalog.schemas import Catalog
from mediagate.errors import DomainError
from mediagate.plans.repository import QuotaRepository

_QUOTA_PRODUCT = {
    "image": "image",
    "agent": "image",
    "avatar": "image",
    "video": "video",
    "chat": "chat",
}


class QuotaExceeded(DomainError):
    code, status = "quota_exceeded", 429


@dataclass(frozen=True)
class Charge:
    product: str
    day: str
    amount: int

    def as_dict(self) -> dict[str, Any]:
        return {"product": self.product, "day": self.day, "amount": self.amount}


def day_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def seconds_to_reset(now: datetime) -> int:
    tomorrow = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(1, int((tomorrow - now).total_seconds() + 0.999))


class QuotaService:
    def __init__(self, session: AsyncSession, catalog: Catalog) -> None:
        self.repo = QuotaRepository(session)
        self.catalog = catalog

    def limit(self, plan: str, product: str) -> int | None:
        plan_info = self.catalog.plans.get(plan)
        return plan_info.daily_quotas.get(product) if plan_info else None

    async def consume(
        self, workspace_id: str, plan: str, product: str, amount: int, now: datetime
    ) -> Charge | None:
        """Count ``amount`` of ``product`` for today, or raise 429 naming the quota."""
        quota_product = _QUOTA_PRODUCT.get(product)
        if quota_product is None:
            return None
        limit = self.limit(plan, quota_product)
        if limit is None:
            return None
        day = day_of(now)
        if not await self.repo.consume(workspace_id, quota_product, day, amount, limit):
            wait = seconds_to_reset(now)
            unit = {"image": "images", "video": "videos", "chat": "chat messages"}[quota_product]
            raise QuotaExceeded(
                f"daily quota of {limit} {unit} on the {plan} plan is used up; it resets at "
                "00:00 UTC",
                quota=quota_product,
                limit=limit,
                plan=plan,
                retry_after=wait,
            )
        return Charge(quota_product, day, amount)

    async def give_back(self, workspace_id: str, charge: dict[str, Any] | None) -> None:
        if charge:
            await self.repo.give_back(
                workspace_id, charge["product"], charge["day"], int(charge["amount"])
            )

    async def today(self, workspace_id: str, plan: str, now: datetime) -> dict[str, Any]:
        used = await self.repo.used(workspace_id, day_of(now))
        return {
            product: {"used": used.get(product, 0), "limit": self.limit(plan, product)}
            for product in ("image", "video", "chat")
        }
