from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class SavedAgent(Base):
    """A workspace's image agent preset, applied to a run through ``agent_id``."""

    __tablename__ = "saved_agents"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    instructions: Mapped[str] = mapped_column(sa.Text, default="")
    aspect_ratio: Mapped[str | None] = mapped_column(sa.String(10))
    resolution: Mapped[str | None] = mapped_column(sa.String(4))
    max_steps: Mapped[int | None] = mapped_column(sa.Integer)
    # None: every tool; otherwise the tools the planner may choose from.
    allowed_tools: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
