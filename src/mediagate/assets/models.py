from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class Asset(Base):
    """A stored file of a workspace; the bytes live in storage under their SHA-256."""

    __tablename__ = "assets"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    role: Mapped[str] = mapped_column(sa.String(20))  # output | input | upload | preview
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    mime_type: Mapped[str] = mapped_column(sa.String(100))
    bytes: Mapped[int] = mapped_column(sa.BigInteger)
    width: Mapped[int | None] = mapped_column(sa.Integer)
    height: Mapped[int | None] = mapped_column(sa.Integer)
    duration_seconds: Mapped[float | None] = mapped_column(sa.Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
