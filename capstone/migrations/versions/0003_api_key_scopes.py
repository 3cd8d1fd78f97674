"""API keys get scopes: what each may do. Keys made before keep all three.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite copies a table to change it: the copy keeps AUTOINCREMENT only when told to.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("api_key", table_kwargs=NEVER_REUSE_IDS) as table:
        table.add_column(
            sa.Column(
                "scopes",
                sqlmodel.sql.sqltypes.AutoString(length=100),
                nullable=False,
                server_default="read write agent",
            )
        )
    # New keys name their own scopes: no default from here on.
    with op.batch_alter_table("api_key", table_kwargs=NEVER_REUSE_IDS) as table:
        table.alter_column("scopes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_key", table_kwargs=NEVER_REUSE_IDS) as table:
        table.drop_column("scopes")
