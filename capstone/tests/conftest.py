"""One app per database for the whole run (its lifespan runs once), emptied before each test.

Every database test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set:
on a scratch database the run creates on that server and drops at its end (its user needs
CREATEDB). With TEST_REDIS_URL, each test that uses Redis keeps to a key prefix of its own.
The tests never read, empty or remove what they did not create.
"""

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from agents import Agent, Model
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, make_url, text
from sqlalchemy.exc import ProgrammingError
from sqlmodel import Session, SQLModel, create_engine

from task_api.agents.provider import open_model
from task_api.agents.team import build_agents
from task_api.agents.tools import TaskContext
from task_api.config import Settings
from task_api.database import create_db_engine, migrate, normalize_database_url
from task_api.deps import get_agents, get_settings
from task_api.main import create_app
from task_api.models import User
from task_api.rate_limit import RateLimits
from task_api.security import create_access_token, hash_password

GIVEN_POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
POSTGRES_URL: str | None = None  # the run's scratch database on that server (pytest_configure)
REDIS_URL = os.environ.get("TEST_REDIS_URL")
# The tests build their settings themselves: your shell's settings must not slip in.
for name in Settings.model_fields:
    os.environ.pop(name.upper(), None)
DATABASES = ["sqlite", "postgresql"] if GIVEN_POSTGRES_URL else ["sqlite"]
API = "/api/v1"


def pytest_configure(config: pytest.Config) -> None:
    """Make the run's scratch database, before any test module reads POSTGRES_URL."""
    global POSTGRES_URL
    if GIVEN_POSTGRES_URL is not None and POSTGRES_URL is None:
        POSTGRES_URL = create_scratch_database(GIVEN_POSTGRES_URL)


def pytest_unconfigure(config: pytest.Config) -> None:
    if POSTGRES_URL is not None:
        drop_scratch_database(POSTGRES_URL)


def create_scratch_database(url: str) -> str:
    """A new, empty database on the server `url` names; its URL."""
    name = f"task_api_test_{uuid.uuid4().hex[:8]}"
    try:
        on_server(url, f"CREATE DATABASE {name}")
    except ProgrammingError:
        raise pytest.UsageError(
            "TEST_DATABASE_URL: its user may not create databases (it needs CREATEDB): the "
            "tests make a scratch database of their own, and never touch the one named"
        ) from None
    return make_url(normalize_database_url(url)).set(database=name).render_as_string(False)


def drop_scratch_database(url: str) -> None:
    assert GIVEN_POSTGRES_URL is not None
    on_server(GIVEN_POSTGRES_URL, f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


def on_server(url: str, statement: str) -> None:
    """Run a statement outside a transaction (as CREATE and DROP DATABASE must be)."""
    admin = create_engine(normalize_database_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(statement)
    admin.dispose()


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A REDIS_PREFIX of the caller's own; at the end, its keys (and only they) are removed."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        if REDIS_URL is not None:
            with redis.Redis.from_url(REDIS_URL) as server:
                for key in server.scan_iter(f"{prefix}:*"):
                    server.delete(key)


@pytest.fixture(scope="module")
def own_redis_prefix() -> Iterator[str]:
    with redis_prefix() as prefix:
        yield prefix


def pytest_report_header() -> str:
    if POSTGRES_URL:
        return "databases: SQLite and PostgreSQL (TEST_DATABASE_URL)"
    return "databases: SQLite only (set TEST_DATABASE_URL to run on PostgreSQL as well)"


def settings_for(database_url: str, **changes: Any) -> Settings:
    """Settings for tests: the defaults, whatever your environment or .env file says."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        app_name="Test API",
        log_format="text",
        **changes,
    )


@pytest.fixture(scope="session", params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'tasks.db'}"  # migrated at start-up
    assert POSTGRES_URL is not None
    migrate(POSTGRES_URL)  # the scratch database: new and empty
    return POSTGRES_URL


@pytest.fixture
def isolated_database_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database of the test's own, migrated and empty: for an app whose worker must not
    meet the session app's (on PostgreSQL, a schema of its own)."""
    if database_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path_factory.mktemp('isolated') / 'tasks.db'}"
        yield url
        return
    schema = "isolated"
    admin = create_db_engine(database_url)
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in database_url else "?"
    url = f"{database_url}{separator}options=-csearch_path%3D{schema}"
    migrate(url)
    yield url
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return settings_for(database_url)


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[FastAPI]:
    """The app, its lifespan run once: migrations (SQLite), engine, model, agents."""
    app = create_app(settings)
    with TestClient(app):
        yield app


@pytest.fixture(scope="session")
def engine(app: FastAPI) -> Engine:
    return app.state.engine  # type: ignore[no-any-return]


def empty_tables(engine: Engine) -> None:
    tables = [table.name for table in reversed(SQLModel.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                connection.execute(text(f'DELETE FROM "{name}"'))
            connection.execute(text("DELETE FROM sqlite_sequence"))  # ids start at 1 again


@pytest.fixture
def fresh_app(app: FastAPI, engine: Engine, settings: Settings) -> Iterator[FastAPI]:
    """The app with empty tables, no events, no request counted against a limit: every
    test that uses the app starts so (the client fixtures ask for this one)."""
    # Let the app's worker finish what an earlier test left it (a run nobody waited for).
    deadline = time.monotonic() + 30
    while app.state.worker.running and time.monotonic() < deadline:
        time.sleep(0.01)
    empty_tables(engine)
    app.state.rate_limits = RateLimits(settings)
    yield app
    app.dependency_overrides.clear()


@pytest.fixture
def session(fresh_app: FastAPI, engine: Engine) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


PASSWORD = "correct horse battery staple"
# Hashing is slow on purpose: hash once for the whole run, not once per test.
HASHED_PASSWORD = hash_password(PASSWORD)


def create_user(session: Session, username: str) -> User:
    user = User(username=username, hashed_password=HASHED_PASSWORD)
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def bearer(user: User, settings: Settings) -> dict[str, str]:
    """The header a client sends after logging in as this user."""
    assert user.id is not None
    return {"Authorization": f"Bearer {create_access_token(user.id, settings)}"}


def strings_in(value: Any) -> list[str]:
    """Every string in parsed JSON, keys too, however deep; a string that holds JSON is opened.

    Assert on these, not on `str(body)`: that escapes quotes (`'Bob\\'s secret'`), so a
    leaked title need not match. A tool's output is JSON in a string, and may escape it too.
    """
    if isinstance(value, dict):
        return strings_in([*value.keys(), *value.values()])
    if isinstance(value, list | tuple):
        return [string for item in value for string in strings_in(item)]
    if not isinstance(value, str):
        return []
    try:
        inner = json.loads(value)
    except ValueError:
        return [value]
    return [value, *strings_in(inner)] if isinstance(inner, dict | list) else [value]


@pytest.fixture
def anonymous_client(fresh_app: FastAPI) -> TestClient:
    """A client that has not logged in. Its base URL is the API's: `client.get("/tasks")`."""
    return TestClient(fresh_app, base_url=f"http://testserver{API}")


@pytest.fixture
def user(session: Session) -> User:
    """Alice, a registered user."""
    return create_user(session, "alice")


@pytest.fixture
def client(fresh_app: FastAPI, user: User, settings: Settings) -> TestClient:
    """A client logged in as alice."""
    return TestClient(
        fresh_app, base_url=f"http://testserver{API}", headers=bearer(user, settings)
    )


@pytest.fixture
def other_client(fresh_app: FastAPI, session: Session, settings: Settings) -> TestClient:
    """A client logged in as bob, another user."""
    bob = create_user(session, "bob")
    return TestClient(fresh_app, base_url=f"http://testserver{API}", headers=bearer(bob, settings))


@pytest.fixture
def service_client(fresh_app: FastAPI) -> TestClient:
    """A client for the routes outside the API: /, /health, /ready, /docs."""
    return TestClient(fresh_app)


@pytest.fixture
def task(client: TestClient) -> dict[str, Any]:
    """One task, created through the API."""
    response = client.post(
        "/tasks", json={"title": "Buy milk", "priority": "high", "due_date": "2026-12-01"}
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def use_model(fresh_app: FastAPI) -> Callable[[Model], None]:
    """Give the agents the test's model (a ScriptedModel, say) instead of the app's."""

    def use(model: Model) -> None:
        tools = fresh_app.state.settings.approval_required_tools
        fresh_app.dependency_overrides[get_agents] = lambda: build_agents(model, tools)

    return use


@pytest.fixture
def use_provider(fresh_app: FastAPI) -> Callable[[Settings], None]:
    """Point the agents at a model provider, as AGENT_MODEL and OPENAI_BASE_URL would."""

    def use(provider: Settings) -> None:
        async def agents_on_providers_model() -> AsyncIterator[Agent[TaskContext]]:
            # Opened and closed for each request here: TestClient runs each request on an
            # event loop of its own, and a client's connections belong to one loop.
            async with open_model(provider) as model:
                yield build_agents(model, provider.approval_required_tools)

        fresh_app.dependency_overrides[get_settings] = lambda: provider
        fresh_app.dependency_overrides[get_agents] = agents_on_providers_model

    return use


@pytest.fixture(scope="session")
def capstone() -> Path:
    return Path(__file__).resolve().parent.parent


class PausingModel(Model):
    """Answers as `model` does, but its call number `pause_at` waits until `resume()`."""

    def __init__(self, model: Model, pause_at: int) -> None:
        self.model = model
        self.pause_at = pause_at
        self.calls = 0
        self.waiting = threading.Event()
        self.cancelled = threading.Event()
        self.go: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def resume(self) -> None:
        """Let the paused call go on (called from the test's thread)."""
        assert self.loop is not None and self.go is not None
        self.loop.call_soon_threadsafe(self.go.set)

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        self.calls += 1
        if self.calls == self.pause_at:
            self.loop, self.go = asyncio.get_running_loop(), asyncio.Event()
            self.waiting.set()
            try:
                await self.go.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        async for event in self.model.stream_response(*args, **kwargs):
            yield event
