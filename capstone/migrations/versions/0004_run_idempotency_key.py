"""A run remembers the Idempotency-Key it was made with: a retried POST /runs finds it.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite copies a table to change it: the copy keeps AUTOINCREMENT only when told to.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.add_column(
            sa.Column(
                "idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True
            )
        )
        table.create_unique_constraint(
            "uq_agent_run_idempotency_key", ["owner_id", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("agent_run", table_kwargs=NEVER_REUSE_IDS) as table:
        table.drop_constraint("uq_agent_run_idempotency_key", type_="unique")
        table.drop_column("idempotency_key")
