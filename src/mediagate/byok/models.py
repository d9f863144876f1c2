from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class ProviderKey(Base):
    """A workspace's own key for one provider. Only the encrypted key and its last four
    characters are stored; the key itself is never shown again."""

    __tablename__ = "provider_keys"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "provider"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(sa.String(40))
    key_encrypted: Mapped[str] = mapped_column(sa.Text)
    key_last4: Mapped[str] = mapped_column(sa.String(4))
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
