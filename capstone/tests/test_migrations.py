"""Alembic owns the schema: its migrations go up and down, and match the models exactly."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from conftest import POSTGRES_URL
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from task_api.database import MIGRATIONS, create_db_engine, normalize_database_url

TABLES = {
    "user", "task", "api_key", "conversation", "conversation_turn", "task_event",
    "agent_run", "agent_run_event", "agent_run_cancel", "webhook_attempt",
    "paused_turn", "approval",
}  # fmt: skip
SCHEMA = "migrations_test"  # on PostgreSQL, a schema of its own, apart from the app's tables


@pytest.fixture(params=["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"])
def empty_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a database with nothing in it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('migrations') / 'empty.db'}"
        return
    assert POSTGRES_URL is not None
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{SCHEMA}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
    admin.dispose()


def alembic(url: str) -> Config:
    config = Config(MIGRATIONS)
    # Escaped for the config file's interpolation: the URL may hold a "%".
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return config


def tables_of(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_makes_the_tables_and_downgrade_removes_them(empty_database: str) -> None:
    engine = create_db_engine(empty_database)

    command.upgrade(alembic(empty_database), "head")
    assert tables_of(engine) == TABLES

    command.downgrade(alembic(empty_database), "base")
    assert tables_of(engine) == set()

    command.upgrade(alembic(empty_database), "head")
    assert tables_of(engine) == TABLES
    engine.dispose()


def test_the_models_match_the_migrations(empty_database: str) -> None:
    command.upgrade(alembic(empty_database), "head")
    engine = create_db_engine(empty_database)

    with engine.connect() as connection:
        differences = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": True}),
            SQLModel.metadata,
        )

    engine.dispose()
    assert differences == [], "a model changed: add a migration (alembic revision --autogenerate)"


def autoincrement_tables(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type='table'")
        return {name for name, sql in rows if "AUTOINCREMENT" in sql.upper()}


def test_on_sqlite_no_migration_lets_ids_be_reused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ids.db"
    engine = create_db_engine(url)

    command.upgrade(alembic(url), "head")

    never_reused = {
        table.name
        for table in SQLModel.metadata.sorted_tables
        if table.dialect_kwargs.get("sqlite_autoincrement")
    }
    assert never_reused <= autoincrement_tables(engine)
    engine.dispose()


def test_0006_gives_back_autoincrement_to_a_table_that_lost_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ids.db"
    engine = create_db_engine(url)
    command.upgrade(alembic(url), "0005")
    with engine.begin() as connection:  # as 0003 left it before it kept AUTOINCREMENT
        connection.exec_driver_sql("ALTER TABLE api_key RENAME TO old_key")
        sql = connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'old_key'"
        ).scalar_one()
        connection.exec_driver_sql(
            sql.replace("old_key", "api_key", 1).replace(" AUTOINCREMENT", "")
        )
        connection.exec_driver_sql("DROP TABLE old_key")
    assert "api_key" not in autoincrement_tables(engine)

    command.upgrade(alembic(url), "head")

    assert "api_key" in autoincrement_tables(engine)
    engine.dispose()
