from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class EditorImage(Base):
    """An image the editor knows by id: one announced through ``/upload-url`` (its asset is set
    once the bytes arrive), or one a ``/process`` call produced (usable for chained edits)."""

    __tablename__ = "editor_images"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    origin: Mapped[str] = mapped_column(sa.String(20))  # upload | result
    file_name: Mapped[str | None] = mapped_column(sa.String(255))
    mime_type: Mapped[str] = mapped_column(sa.String(100))
    declared_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    asset_id: Mapped[str | None] = mapped_column(sa.String(36))
    job_id: Mapped[str | None] = mapped_column(sa.String(36))
    upload_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Style(Base):
    """A workspace's style preset: prompt modifiers and, optionally, a reference image."""

    __tablename__ = "editor_styles"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # Text put before / after the caller's prompt.
    prompt_prefix: Mapped[str] = mapped_column(sa.Text, default="")
    prompt_suffix: Mapped[str] = mapped_column(sa.Text, default="")
    reference_asset_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Character(Base):
    """A workspace's character preset: a description and reference images of one figure,
    kept consistent across edits. ``avatar_id`` links a saved avatar it was made from."""

    __tablename__ = "editor_characters"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    reference_asset_ids: Mapped[list[Any]] = mapped_column(sa.JSON, default=list)
    avatar_id: Mapped[str | None] = mapped_column(sa.String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
