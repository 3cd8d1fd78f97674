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


def upgrade() -> None:
    with op.batch_alter_table("api_key") as table:
        table.add_column(
            sa.Column(
                "scopes",
                sqlmodel.sql.sqltypes.AutoString(length=100),
                nullable=False,
                server_default="read write agent",
            )
        )
    with op.batch_alter_table("api_key") as table:  # new keys name their own
        table.alter_column("scopes", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_key") as table:
        table.drop_column("scopes")
