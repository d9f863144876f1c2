from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class CreditAccount(Base):
    """Running totals of a workspace's ledger, kept in the same transaction as each entry.

    ``balance`` is what has been granted minus what has been captured; ``held`` is the sum of
    open holds. Holds are taken by a conditional UPDATE so available credit never goes negative.
    """

    __tablename__ = "credit_accounts"
    __table_args__ = (
        sa.CheckConstraint("held >= 0", name="held_not_negative"),
        sa.CheckConstraint("balance - held >= 0", name="available_not_negative"),
    )

    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    balance: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    held: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class LedgerEntry(Base):
    """One append-only movement; ``entry_key`` is unique so no retry writes it twice."""

    __tablename__ = "ledger_entries"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(sa.String(10))
    amount: Mapped[int] = mapped_column(sa.BigInteger)
    entry_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    job_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    note: Mapped[str] = mapped_column(sa.String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
