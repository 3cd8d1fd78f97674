"""A run's webhook is delivered from the table, whoever ended the run; a cancel request is a
row of its own, so that asking to cancel never waits for a worker's lock.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite copies a table to change it: the copy keeps AUTOINCREMENT only when told to.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

WEBHOOK_DUE = sa.text("webhook_url IS NOT NULL AND webhook_done_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "agent_run_cancel",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["agent_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.execute(
        "INSERT INTO agent_run_cancel (run_id, created_at) "
        "SELECT id, CURRENT_TIMESTAMP FROM agent_run WHERE cancel_requested"
    )
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.drop_column("cancel_requested")
        table.add_column(sa.Column("webhook_done_at", sa.DateTime(timezone=True), nullable=True))
    # The runs that ended before this revision had their webhooks called then.
    op.execute(
        "UPDATE agent_run SET webhook_done_at = finished_at "
        "WHERE webhook_url IS NOT NULL AND finished_at IS NOT NULL"
    )
    op.create_index(
        "ix_agent_run_webhook_due",
        "agent_run",
        ["finished_at"],
        postgresql_where=WEBHOOK_DUE,
        sqlite_where=WEBHOOK_DUE,
    )


def downgrade() -> None:
    op.drop_index("ix_agent_run_webhook_due", table_name="agent_run")
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.drop_column("webhook_done_at")
        table.add_column(
            sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE agent_run SET cancel_requested = TRUE "
        "WHERE id IN (SELECT run_id FROM agent_run_cancel)"
    )
    op.drop_table("agent_run_cancel")
