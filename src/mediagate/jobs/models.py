from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mediagate.clock import utcnow
from mediagate.db.base import Base, UTCDateTime, new_id


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_claim", "status", "run_after"),)

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    # A surface's own id format where its spec shows one (e.g. job_<millis>_<random>).
    public_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    workspace_id: Mapped[str] = mapped_column(
        sa.ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    api_key_id: Mapped[str | None] = mapped_column(sa.String(36))
    surface: Mapped[str] = mapped_column(sa.String(40))
    product: Mapped[str] = mapped_column(sa.String(20))
    model: Mapped[str] = mapped_column(sa.String(120))
    mode: Mapped[str] = mapped_column(sa.String(10))
    status: Mapped[str] = mapped_column(sa.String(20), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    progress: Mapped[float] = mapped_column(sa.Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(sa.String(500))
    error: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    engine: Mapped[str | None] = mapped_column(sa.String(60))
    price_version: Mapped[str] = mapped_column(sa.String(40))
    credits_estimated: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    credits_held: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    credits_charged: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    usage_event_id: Mapped[str | None] = mapped_column(sa.String(36))
    correlation_id: Mapped[str | None] = mapped_column(sa.String(200))
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", sa.JSON, default=dict)
    webhook_url: Mapped[str | None] = mapped_column(sa.String(2000))
    provider_task_id: Mapped[str | None] = mapped_column(sa.String(200))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(sa.Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(80))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Incremented on every claim; a worker may only write while it still holds its token.
    fence: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_event_seq: Mapped[int] = mapped_column(sa.Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class JobEvent(Base):
    """Append-only, numbered per job: the source for stream replay."""

    __tablename__ = "job_events"
    __table_args__ = (sa.UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    job_id: Mapped[str] = mapped_column(sa.ForeignKey("jobs.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(sa.Integer)
    type: Mapped[str] = mapped_column(sa.String(20))
    data: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
