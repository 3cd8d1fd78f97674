"""The database: an engine built from DATABASE_URL, the tables, and a session per request."""

from collections.abc import Iterator

from sqlalchemy import Engine
from sqlmodel import Session, SQLModel, create_engine

from task_api.config import get_settings


def normalize_database_url(url: str) -> str:
    """Take a URL as Neon, Render or Heroku hand it out and pick the psycopg 3 driver.

    `postgres://` and `postgresql://` both become `postgresql+psycopg://`; query parameters
    such as `?sslmode=require` stay as they are, and psycopg honours them.
    """
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


def create_db_engine(url: str) -> Engine:
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        # FastAPI runs plain `def` routes in a thread pool: let SQLite be used across threads.
        return create_engine(url, connect_args={"check_same_thread": False})
    return create_engine(
        url,
        # A serverless database (Neon) sleeps and drops idle connections: test each one
        # before use, and replace connections before the server is likely to have closed them.
        pool_pre_ping=True,
        pool_recycle=300,
        pool_size=5,
        max_overflow=5,
    )


engine = create_db_engine(get_settings().database_url)


def create_tables() -> None:
    """Create the tables that do not exist yet (the capstone brings migrations)."""
    SQLModel.metadata.create_all(engine)


def get_session() -> Iterator[Session]:
    """One session per request, closed when the response is sent."""
    with Session(engine) as session:
        yield session
