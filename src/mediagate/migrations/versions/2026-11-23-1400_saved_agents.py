"""saved agents

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:00:00
"""

import sqlalchemy as sa
from alembic import op

import mediagate.db.base

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "saved_agents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("workspace_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("aspect_ratio", sa.String(length=10), nullable=True),
        sa.Column("resolution", sa.String(length=4), nullable=True),
        sa.Column("max_steps", sa.Integer(), nullable=True),
        sa.Column("allowed_tools", sa.JSON(), nullable=True),
        sa.Column("created_at", mediagate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", mediagate.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_saved_agents_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_agents")),
    )
    with op.batch_alter_table("saved_agents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_saved_agents_workspace_id"), ["workspace_id"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("saved_agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_saved_agents_workspace_id"))

    op.drop_table("saved_agents")
