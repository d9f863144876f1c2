from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    plan: Mapped[str] = mapped_column(sa.String(20), default="free")
    # Signs deliveries to per-job webhook URLs (endpoints have their own secrets); encrypted.
    webhook_secret_encrypted: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Member(Base):
    """A person or agent acting in a workspace; API keys belong to a member."""

    __tablename__ = "members"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    role: Mapped[str] = mapped_column(sa.String(20), default="member")
    permissions: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    # "<issuer>|<subject>" for members that sign in through an identity exchange.
    external_subject: Mapped[str | None] = mapped_column(sa.String(400), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
