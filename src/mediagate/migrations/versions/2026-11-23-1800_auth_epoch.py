"""auth epoch

A one-row counter that triggers bump on every update or delete of api_keys, members and
workspaces (cascaded deletes included), in the changing transaction. Servers cache API-key
principals per process and drop the cache when the counter moves, so a change made by any
process (the CLI, another server) applies on the next request. Inserts need no trigger: only
keys that were found are cached.

A later SQLite batch migration that recreates one of these tables drops its triggers with it:
such a migration must create them again (tests/db/test_auth_epoch.py checks them at head).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TABLES = ("api_keys", "members", "workspaces")
BUMP = "UPDATE auth_epoch SET value = value + 1 WHERE id = 1"


def upgrade() -> None:
    op.create_table(
        "auth_epoch",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_epoch")),
    )
    op.execute("INSERT INTO auth_epoch (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        # Statement-level: a bulk update bumps once. The bump row-locks the counter until the
        # changing transaction ends, so such transactions queue on it (they are rare).
        op.execute(
            "CREATE FUNCTION bump_auth_epoch() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_bump_auth_epoch "
                f"AFTER UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bump_auth_epoch()"
            )
    else:
        # SQLite triggers are per row; cascaded deletes fire them (foreign_keys is on).
        for table in TABLES:
            for event in ("update", "delete"):
                op.execute(
                    f"CREATE TRIGGER {table}_{event}_bump_auth_epoch "
                    f"AFTER {event.upper()} ON {table} BEGIN {BUMP}; END"
                )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_auth_epoch ON {table}")
        op.execute("DROP FUNCTION IF EXISTS bump_auth_epoch()")
    else:
        for table in TABLES:
            for event in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_{event}_bump_auth_epoch")
    op.drop_table("auth_epoch")
