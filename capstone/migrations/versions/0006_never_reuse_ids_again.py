"""On SQLite, the tables batch mode copied get AUTOINCREMENT back: ids are never reused.

Revisions 0002 to 0005 copied them without it, so a deleted last row's id could come back
(a revoked API key's id given to the next key). PostgreSQL is unchanged.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COPIED = ("api_key", "agent_run", "agent_run_event")


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    for name in COPIED:
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).scalar_one()
        if "AUTOINCREMENT" not in sql.upper():
            with op.batch_alter_table(
                name, recreate="always", table_kwargs={"sqlite_autoincrement": True}
            ):
                pass


def downgrade() -> None:
    pass  # the tables keep AUTOINCREMENT: ids not reused harm nothing
