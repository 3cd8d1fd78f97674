import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, NullPool, StaticPool, make_url, text
from sqlmodel import Session, SQLModel, create_engine

from task_api.config import Settings, get_settings

# The app reads its settings once, as it is imported (the title of its OpenAPI document, the
# database URL). Let that read see the defaults, whatever your .env file or your shell says;
# then import it.
Settings.model_config["env_file"] = None
for name in Settings.model_fields:
    os.environ.pop(name.upper(), None)

from task_api.database import create_db_engine, get_session, normalize_database_url
from task_api.main import app
from task_api.models import User
from task_api.rate_limit import limiter
from task_api.security import create_access_token, hash_password

# Every database test runs on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set:
# in a database the tests make on that server for the run, and drop at its end.
POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")
DATABASES = ["sqlite", "postgresql"] if POSTGRES_URL else ["sqlite"]


def pytest_report_header() -> str:
    if POSTGRES_URL:
        return "databases: SQLite and PostgreSQL (TEST_DATABASE_URL)"
    return "databases: SQLite only (set TEST_DATABASE_URL to run on PostgreSQL as well)"


@pytest.fixture(scope="session")
def scratch_database() -> Iterator[str]:
    """The URL of a new, empty database on TEST_DATABASE_URL's server, dropped after the run."""
    assert POSTGRES_URL is not None
    # Never the database the URL names: it may hold data its owner wants to keep.
    name = f"task_api_test_{secrets.token_hex(4)}"
    # AUTOCOMMIT: CREATE and DROP DATABASE cannot run inside a transaction.
    server = create_engine(
        normalize_database_url(POSTGRES_URL), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    with server.connect() as connection:
        may_create = "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
        if not connection.execute(text(may_create)).scalar():
            pytest.fail(
                "The TEST_DATABASE_URL user needs CREATEDB to make the tests' own database.",
                pytrace=False,
            )
        connection.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture(scope="session", params=DATABASES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """One engine per database for the whole run."""
    if request.param == "sqlite":
        # In memory, and one connection shared by every thread, so all sessions see the same data.
        engine = create_engine(
            "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
        )
    else:
        # Asked for here, not as an argument, so that a run on SQLite alone needs no server.
        engine = create_db_engine(request.getfixturevalue("scratch_database"))
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    """Every test starts with no requests counted against any limit."""
    limiter.reset()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session on freshly made, empty tables, so no test sees another test's tasks."""
    SQLModel.metadata.drop_all(engine)
    SQLModel.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


@pytest.fixture
def settings() -> Settings:
    """Settings for tests: the defaults, whatever your environment or .env file says."""
    return Settings(_env_file=None, app_name="Test API", environment="development")


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


@pytest.fixture
def anonymous_client(engine: Engine, session: Session, settings: Settings) -> Iterator[TestClient]:
    """A client that has not logged in, whose requests reach the test's database and settings."""

    def get_test_session() -> Iterator[Session]:
        # A session per request, as in production: what one request left undone,
        # the next one does not see.
        with Session(engine) as request_session:
            yield request_session

    app.dependency_overrides[get_session] = get_test_session
    app.dependency_overrides[get_settings] = lambda: settings
    yield TestClient(app)
    app.dependency_overrides.clear()


@pytest.fixture
def user(session: Session) -> User:
    """Alice, a registered user."""
    return create_user(session, "alice")


@pytest.fixture
def client(anonymous_client: TestClient, user: User, settings: Settings) -> TestClient:
    """A client logged in as alice."""
    return TestClient(app, headers=bearer(user, settings))


@pytest.fixture
def other_client(anonymous_client: TestClient, session: Session, settings: Settings) -> TestClient:
    """A client logged in as bob, another user."""
    return TestClient(app, headers=bearer(create_user(session, "bob"), settings))


@pytest.fixture
def task(client: TestClient) -> dict[str, Any]:
    """One task, created through the API."""
    response = client.post(
        "/tasks", json={"title": "Buy milk", "priority": "high", "due_date": "2026-12-01"}
    )
    assert response.status_code == 201, response.text
    return response.json()
