"""Approvals: a turn that waits for its owner's decision on a tool call is stored, with each
call that waits; a background run may wait in `awaiting_approval`.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite copies a table to change it: the copy keeps AUTOINCREMENT only when told to.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
AWAITING = "awaiting_approval"


def run_status(*values: str) -> sa.Enum:
    return sa.Enum(*values, name="runstatus", native_enum=False)


def upgrade() -> None:
    op.create_table(
        "paused_turn",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("new_conversation", sa.Boolean(), nullable=False),
        sa.Column("message", sqlmodel.AutoString(), nullable=False),
        sa.Column("history_length", sa.Integer(), nullable=False),
        sa.Column("temperature", sa.Float(), nullable=True),
        sa.Column("max_output_tokens", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.JSON(), nullable=True),
        sa.Column("agents_version", sqlmodel.AutoString(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["agent_run.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        **NEVER_REUSE_IDS,
    )
    op.create_index("ix_paused_turn_expires_at", "paused_turn", ["expires_at"])
    op.create_index("ix_paused_turn_owner_id", "paused_turn", ["owner_id"])
    op.create_index("ix_paused_turn_run_id", "paused_turn", ["run_id"])
    op.create_table(
        "approval",
        sa.Column("id", sqlmodel.AutoString(length=32), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("paused_turn_id", sa.Integer(), nullable=False),
        sa.Column("call_id", sqlmodel.AutoString(length=200), nullable=False),
        sa.Column("tool", sqlmodel.AutoString(length=100), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("agent", sqlmodel.AutoString(length=100), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "approved",
                "rejected",
                "expired",
                name="approvalstatus",
                native_enum=False,
            ),
            nullable=False,
        ),
        sa.Column("reason", sqlmodel.AutoString(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["user.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["paused_turn_id"], ["paused_turn.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_approval_owner_id", "approval", ["owner_id"])
    op.create_index("ix_approval_paused_turn_id", "approval", ["paused_turn_id"])
    with op.batch_alter_table("webhook_attempt", table_kwargs=NEVER_REUSE_IDS) as table:
        table.add_column(sa.Column("message_id", sqlmodel.AutoString(length=100), nullable=True))
        table.create_index("ix_webhook_attempt_message_id", ["message_id"])
    # Until now, a run's one message was its final status.
    op.execute("UPDATE webhook_attempt SET message_id = 'run_' || run_id")
    # The status column is as wide as its longest value: "awaiting_approval" needs more.
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.alter_column(
            "status",
            existing_type=run_status(*RUN_STATUSES),
            type_=run_status(*RUN_STATUSES[:2], AWAITING, *RUN_STATUSES[2:]),
            existing_nullable=False,
        )


def downgrade() -> None:
    # A run that waits for an approval cannot wait in the older schema: it fails.
    op.execute(
        "UPDATE agent_run SET status = 'failed', detail = 'Waited for an approval when the "
        f"service was downgraded' WHERE status = '{AWAITING}'"
    )
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.alter_column(
            "status",
            existing_type=run_status(*RUN_STATUSES[:2], AWAITING, *RUN_STATUSES[2:]),
            type_=run_status(*RUN_STATUSES),
            existing_nullable=False,
        )
    with op.batch_alter_table("webhook_attempt", table_kwargs=NEVER_REUSE_IDS) as table:
        table.drop_index("ix_webhook_attempt_message_id")
        table.drop_column("message_id")
    op.drop_table("approval")
    op.drop_table("paused_turn")
