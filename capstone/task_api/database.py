"""The database: an engine built from DATABASE_URL, the schema's migrations, the sessions.

A session is held in one of two ways, by how long the work lasts:

- a request that answers from the database and ends takes the request's session
  (`SessionDep`, from `get_session` below), closed when its route function returns;
- work that waits between its steps (a chat turn waits for the model, a stream for the next
  event, a worker for its run) holds none while it waits: each step opens a short session of
  its own, `with Session(engine)`, in the class that owns the data (the run queue, the event
  broker, the conversation store, the agents' tools) or in `deps.authenticate`.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
from alembic import command
from alembic.config import Config
from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, event, text
from sqlmodel import Session, create_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "alembic.ini"
# How long a request waits for a free connection before it answers 503 (errors.py).
POOL_TIMEOUT_SECONDS = 5.0


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


# No wait on PostgreSQL lasts long: a stalled process cannot hold others up for more than
# seconds. A lock not had in 3 s, a query not done in 5 s (this service's take milliseconds),
# a transaction left idle for 10 s (its holder is stuck: its locks go) all end in an error,
# which the API answers with 503.
POSTGRES_TIMEOUTS = {
    "lock_timeout": "3s",
    "statement_timeout": "5s",
    "idle_in_transaction_session_timeout": "10s",
}
CONNECT_TIMEOUT_SECONDS = 3
# The timeouts above are the server's: a server that takes a query and never answers (it is
# paused, or stalled behind a network fault) needs one on this side as well.
ANSWER_TIMEOUT_SECONDS = 6.0


class TimedConnection(psycopg.Connection[Any]):
    """A psycopg connection that waits at most ANSWER_TIMEOUT_SECONDS for each answer of
    the server: then it closes, and the query fails as if the server had gone away."""

    def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        try:
            return super().wait(gen, interval, timeout or ANSWER_TIMEOUT_SECONDS)
        except psycopg.errors._WaitTimeout:  # the connection is mid-query: it cannot go on
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {ANSWER_TIMEOUT_SECONDS:g} s"
            ) from None


def set_postgres_timeouts(connection: Any, _: Any) -> None:
    """Each new PostgreSQL connection: the timeouts above, for the whole session."""
    for name, value in POSTGRES_TIMEOUTS.items():
        connection.execute(f"SET {name} = '{value}'")
    connection.commit()


def connect_timed(dialect: Any, record: Any, cargs: Any, cparams: Any) -> TimedConnection:
    return TimedConnection.connect(*cargs, **cparams)


SQLITE_POOL_SIZE = 40  # anyio's worker threads, which run every blocking database call


def create_db_engine(url: str) -> Engine:
    url = normalize_database_url(url)
    if url.startswith("sqlite"):
        # Routes run in a thread pool: let SQLite be used across threads, and wait for a
        # lock rather than fail when two requests write at once.
        engine = create_engine(
            url,
            hide_parameters=True,  # an error's message never carries a password hash, a title
            connect_args={"check_same_thread": False, "timeout": 30},
            # One per worker thread that may use it (the default five meant, under load,
            # opening and closing a connection, pragmas and all, for most sessions), and a few
            # more for the SDK's tools, which run in threads of their own.
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=10,
            pool_timeout=POOL_TIMEOUT_SECONDS,
        )
        event.listen(engine, "connect", set_sqlite_pragmas)
        return engine
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        # A serverless database (Neon) sleeps and drops idle connections: test each one
        # before use, and replace connections before the server is likely to have closed them.
        pool_pre_ping=True,
        pool_recycle=300,
        pool_size=10,
        max_overflow=10,
        pool_timeout=POOL_TIMEOUT_SECONDS,
    )
    event.listen(engine, "do_connect", connect_timed)
    event.listen(engine, "connect", set_postgres_timeouts)
    return engine


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


async def get_session(request: Request) -> AsyncIterator[Session]:
    """One session per request, on the engine the app opened at start-up.

    A new session connects to nothing until its first query, so it is made here, on the
    event loop. Closing one that still holds a connection (a transaction was begun and not
    committed) gives the connection back to the pool, which is I/O: a worker thread does
    that, shielded from cancellation so that the connection always goes back. (As a plain
    `def`, the dependency would cost two trips to a worker thread on every request.)

    It keeps what it loaded after a commit (expire_on_commit=False): a request's objects are
    its own for a few milliseconds, and reading each one back after every commit would cost
    a query and a connection for nothing.
    """
    session = Session(request.app.state.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(session.close)
        else:
            session.close()
