from collections.abc import Iterator
from typing import Any

import pytest
from conftest import PASSWORD
from fastapi.testclient import TestClient
from limits import parse
from pydantic import ValidationError

from task_api.config import Settings, get_settings
from task_api.main import app
from task_api.models import User
from task_api.rate_limit import login_limit


def login(client: TestClient, password: str = PASSWORD) -> Any:
    return client.post("/auth/token", data={"username": "alice", "password": password})


def assert_is_429(response: Any) -> None:
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many requests")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 24 * 3600


def test_login_is_limited_per_client_address(anonymous_client: TestClient, user: User) -> None:
    allowed = parse(login_limit()).amount
    for _ in range(allowed):
        assert login(anonymous_client, "wrong guess").status_code == 401

    response = login(anonymous_client)  # even the right password waits now

    assert_is_429(response)


def test_another_address_may_still_log_in(anonymous_client: TestClient, user: User) -> None:
    for _ in range(parse(login_limit()).amount):
        login(anonymous_client, "wrong guess")

    elsewhere = TestClient(app, client=("203.0.113.7", 50000))

    assert login(elsewhere).status_code == 200


@pytest.fixture
def strict_api_limit(anonymous_client: TestClient, settings: Settings) -> Iterator[None]:
    """An API limit of three calls a minute, to reach it quickly."""
    app.dependency_overrides[get_settings] = lambda: settings.model_copy(
        update={"rate_limit_api": "3/minute"}
    )
    yield


def test_the_api_is_limited_per_user(
    client: TestClient, other_client: TestClient, strict_api_limit: None
) -> None:
    for _ in range(3):
        assert client.get("/tasks").status_code == 200

    assert_is_429(client.post("/tasks", json={"title": "One too many"}))
    assert other_client.get("/tasks").status_code == 200


def test_a_limited_request_changes_nothing(client: TestClient, strict_api_limit: None) -> None:
    for _ in range(3):
        client.get("/tasks")

    client.post("/tasks", json={"title": "One too many"})

    app.dependency_overrides.pop(get_settings)
    assert client.get("/tasks").json() == []


def test_limits_are_documented_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    assert "429" in paths["/auth/token"]["post"]["responses"]
    assert "429" in paths["/tasks"]["get"]["responses"]


@pytest.mark.parametrize("value", ["lots", "5 per fortnight", ""])
def test_a_limit_that_is_not_a_rate_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, rate_limit_api=value)
