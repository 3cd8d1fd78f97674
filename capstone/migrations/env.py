"""How Alembic reaches the database: the app's own URL, and its models as the target."""

import logging.config

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlmodel import SQLModel

from task_api import models  # noqa: F401  (they define the tables on SQLModel.metadata)
from task_api.config import Settings
from task_api.database import normalize_database_url
from task_api.runs import models as run_models  # noqa: F401

config = context.config
# Called by the app (database.migrate) with the URL set; from the command line, read the
# settings as the app does: DATABASE_URL from the environment or .env.
if not config.get_main_option("sqlalchemy.url"):
    url = normalize_database_url(Settings().database_url)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # "%" is special there
    if config.config_file_name is not None:
        logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot alter a column in place: Alembic copies the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
