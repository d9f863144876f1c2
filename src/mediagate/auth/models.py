from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class ApiKey(Base):
    """An API key. Only its SHA-256 is stored; ``prefix`` is shown to tell keys apart."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    member_id: Mapped[str] = mapped_column(sa.ForeignKey("members.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(200), default="")
    prefix: Mapped[str] = mapped_column(sa.String(32))
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    scopes: Mapped[list[Any]] = mapped_column(sa.JSON)
    mode: Mapped[str] = mapped_column(sa.String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuthEpoch(Base):
    """One row counting changes that can alter a key's principal.

    Database triggers add one on every update or delete of ``api_keys``, ``members`` and
    ``workspaces``, in the changing transaction, whichever process makes it. Each process
    caches principals of API keys with the value it read before loading them and drops its
    cache when the value moves (see ``mediagate.auth.cache``).
    """

    __tablename__ = "auth_epoch"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    value: Mapped[int] = mapped_column(sa.BigInteger, default=0)
