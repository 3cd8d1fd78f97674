"""One name for each thing: a run's conversation is `conversation_id`, an event's name `type`.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite copies a table to change it: the copy keeps AUTOINCREMENT only when told to.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    # batch_alter_table: SQLite renames a column by copying the table; PostgreSQL in place.
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.alter_column("session_id", new_column_name="conversation_id")
    with op.batch_alter_table("agent_run_event", table_kwargs=NEVER_REUSE_IDS) as table:
        table.alter_column("event", new_column_name="type")


def downgrade() -> None:
    with op.batch_alter_table("agent_run_event", table_kwargs=NEVER_REUSE_IDS) as table:
        table.alter_column("type", new_column_name="event")
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.alter_column("conversation_id", new_column_name="session_id")
