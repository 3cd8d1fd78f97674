"""The service's contract, checked from outside: HTTP, SSE and WebSocket against a server at
a URL, with no import of its code. Build the capstone yourself from lesson 13 and check each
part as you go:

    pytest spec --base-url http://127.0.0.1:8000 -m runs

The server runs the offline model (the default) with limits an automated client will not
hit: README.md in this folder gives the command.
"""

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

PARTS = {
    "service": "a service: /api/v1, health and readiness, request ids, errors",
    "accounts": "register, log in, who am I",
    "tasks": "tasks under /api/v1, each user's own",
    "agents": "triage and handoffs, streamed",
    "conversations": "conversations as a resource",
    "api_keys": "API keys with scopes",
    "websocket": "the chat over a WebSocket",
    "runs": "background runs: queue, result, events, cancel, idempotency",
    "approvals": "a person approves what the agents would delete",
    "mcp": "the Task tools over MCP",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--base-url",
        default="http://127.0.0.1:8000",
        help="the server to check (default: http://127.0.0.1:8000)",
    )
    parser.addoption(
        "--wait-seconds",
        type=float,
        default=5.0,
        help="how long to wait for the server to answer before giving up (default: 5)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for name, what in PARTS.items():
        config.addinivalue_line("markers", f"{name}: {what}")


@pytest.fixture(scope="session")
def base_url(request: pytest.FixtureRequest) -> str:
    url = str(request.config.getoption("--base-url")).rstrip("/")
    deadline = time.monotonic() + float(request.config.getoption("--wait-seconds"))
    while True:
        try:
            httpx.get(f"{url}/health", timeout=5)
            return url
        except httpx.HTTPError as error:
            if time.monotonic() > deadline:
                pytest.exit(f"no server answers at {url} ({type(error).__name__}): start it")
            time.sleep(0.2)


@dataclass
class User:
    """A user of the service: a client that sends their token, and their name."""

    api: httpx.Client
    username: str
    password: str
    token: str


def sign_up(base_url: str) -> User:
    username, password = f"spec_{uuid.uuid4().hex[:10]}", "a password for the spec"
    api = httpx.Client(base_url=f"{base_url}/api/v1", timeout=30)
    account = {"username": username, "password": password}
    assert api.post("/auth/register", json=account).status_code == 201
    reply = api.post("/auth/token", data=account)
    assert reply.status_code == 200, reply.text
    token = reply.json()["access_token"]
    api.headers["Authorization"] = f"Bearer {token}"
    return User(api, username, password, token)


@pytest.fixture(scope="session")
def alice(base_url: str) -> Iterator[User]:
    user = sign_up(base_url)
    yield user
    user.api.close()


@pytest.fixture(scope="session")
def bob(base_url: str) -> Iterator[User]:
    user = sign_up(base_url)
    yield user
    user.api.close()


@pytest.fixture
def anonymous(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{base_url}/api/v1", timeout=30) as client:
        yield client


@pytest.fixture
def alice_api(alice: User) -> httpx.Client:
    return alice.api
