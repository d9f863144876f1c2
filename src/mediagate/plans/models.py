from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.db.base import Base


class QuotaUsage(Base):
    """How much of a daily quota a workspace used on one UTC day."""

    __tablename__ = "quota_usage"

    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    product: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    day: Mapped[str] = mapped_column(sa.String(10), primary_key=True)  # YYYY-MM-DD, UTC
    used: Mapped[int] = mapped_column(sa.Integer, default=0)
