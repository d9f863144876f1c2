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
    limit: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"product": self.product, "day": self.day, "amount": self.amount}

    def exceeded(self, plan: str, now: datetime) -> QuotaExceeded:
        unit = {"image": "images", "video": "videos", "chat": "chat messages"}[self.product]
        return QuotaExceeded(
            f"daily quota of {self.limit} {unit} on the {plan} plan is used up; it resets at "
            "00:00 UTC",
            quota=self.product,
            limit=self.limit,
            plan=plan,
            retry_after=seconds_to_reset(now),
        )


def day_of(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%d")


def seconds_to_reset(now: datetime) -> int:
    tomorrow = (now.astimezone(UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return max(1, int((tomorrow - now).total_seconds() + 0.999))


def limit_of(catalog: Catalog, plan: str, product: str) -> int | None:
    plan_info = catalog.plans.get(plan)
    return plan_info.daily_quotas.get(product) if plan_info else None


def charge_for(
    catalog: Catalog, plan: str, product: str, amount: int, now: datetime
) -> Charge | None:
    """What accepting ``amount`` of ``product`` today counts against, if the plan limits it;
    nothing is written."""
    quota_product = _QUOTA_PRODUCT.get(product)
    if quota_product is None:
        return None
    limit = limit_of(catalog, plan, quota_product)
    if limit is None:
        return None
    return Charge(quota_product, day_of(now), amount, limit)


class QuotaService:
    def __init__(self, session: AsyncSession, catalog: Catalog) -> None:
        self.repo = QuotaRepository(session)
        self.catalog = catalog

    def limit(self, plan: str, product: str) -> int | None:
        return limit_of(self.catalog, plan, product)

    async def consume(
        self, workspace_id: str, plan: str, product: str, amount: int, now: datetime
    ) -> Charge | None:
        """Count ``amount`` of ``product`` for today, or raise 429 naming the quota."""
        charge = charge_for(self.catalog, plan, product, amount, now)
        if charge is None:
            return None
        if not await self.repo.consume(
            workspace_id, charge.product, charge.day, amount, charge.limit
        ):
            raise charge.exceeded(plan, now)
        return charge

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
