"""The database: an engine built from DATABASE_URL, the schema's migrations, the sessions."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from fastapi import Request
from sqlalchemy import Engine, event, text
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "alembic.ini"


def normalize_database_url(url: str) -> str:
    """Take a URL as Neon, Render or Heroku hand it out and pick the psycopg 3 driver.

    `postgres://` and `postgresql://` both become `postgresql+psycopg://`; query parameters
    such as `?sslmode=require` stay as they are, and psycopg honours them.
    """
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def set_sqlite_pragmas(connection: Any, _: Any) -> None:
    """Each new SQLite connection: check foreign keys (PostgreSQL always does); write ahead
    (readers never wait for a writer) and sync at checkpoints, not at every commit."""
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")


def create_db_engine(url: str) -> Engine:
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        # Routes run in a thread pool: let SQLite be used across threads, and wait for a
        # lock rather than fail when two requests write at once.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", set_sqlite_pragmas)
        return engine
    return create_engine(
        url,
        # A serverless database (Neon) sleeps and drops idle connections: test each one
        # before use, and replace connections before the server is likely to have closed them.
        pool_pre_ping=True,
        pool_recycle=300,
        pool_size=10,
        max_overflow=10,
    )


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (`alembic upgrade head`)."""
    config = Config(MIGRATIONS)
    # Escaped for the config file's interpolation: a URL may hold a "%" (an encoded password).
    config.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    command.upgrade(config, "head")


def database_answers(engine: Engine) -> bool:
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:
        return False
    return True


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, on the engine the app opened at start-up."""
    with Session(request.app.state.engine) as session:
        yield session
