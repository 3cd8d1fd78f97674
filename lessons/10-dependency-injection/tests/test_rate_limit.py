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
from task_api.rate_limit import login_limit, register_limit


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


def from_address(number: int) -> TestClient:
    return TestClient(app, client=(f"203.0.113.{number}", 50000))


def test_another_address_may_still_log_in(anonymous_client: TestClient, user: User) -> None:
    guess = {"username": "nobody", "password": "wrong guess"}
    for _ in range(parse(login_limit()).amount):
        anonymous_client.post("/auth/token", data=guess)
    assert_is_429(login(anonymous_client))

    assert login(from_address(7)).status_code == 200


def test_failed_logins_are_limited_per_username(anonymous_client: TestClient, user: User) -> None:
    # Each guess from another address: the per-address limit alone would never stop them.
    for number in range(parse(login_limit()).amount):
        assert login(from_address(number), "wrong guess").status_code == 401

    assert_is_429(login(from_address(99)))
    other = {"username": "bob", "password": "wrong guess"}
    assert from_address(99).post("/auth/token", data=other).status_code == 401


def test_successful_logins_do_not_count_against_the_username(
    anonymous_client: TestClient, user: User
) -> None:
    for number in range(parse(login_limit()).amount + 1):
        assert login(from_address(number)).status_code == 200


def test_registration_is_limited_per_client_address(anonymous_client: TestClient) -> None:
    allowed = parse(register_limit()).amount
    for number in range(allowed):
        account = {"username": f"user{number}", "password": PASSWORD}
        assert anonymous_client.post("/auth/register", json=account).status_code == 201

    account = {"username": "one-too-many", "password": PASSWORD}
    assert_is_429(anonymous_client.post("/auth/register", json=account))
    assert from_address(7).post("/auth/register", json=account).status_code == 201


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
    assert "429" in paths["/auth/register"]["post"]["responses"]
    assert "429" in paths["/tasks"]["get"]["responses"]


@pytest.mark.parametrize("value", ["lots", "5 per fortnight", ""])
def test_a_limit_that_is_not_a_rate_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, rate_limit_api=value)
