from collections.abc import Callable
from typing import Any

import pytest
from conftest import API, PASSWORD
from fastapi import FastAPI
from fastapi.testclient import TestClient
from limits import parse
from pydantic import ValidationError

from task_api.config import Settings
from task_api.models import User
from task_api.rate_limit import RateLimits


def login(client: TestClient, password: str = PASSWORD) -> Any:
    return client.post("/auth/token", data={"username": "alice", "password": password})


def assert_is_429(response: Any) -> None:
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many requests")
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 24 * 3600


@pytest.fixture
def from_address(fresh_app: FastAPI) -> Callable[[int], TestClient]:
    """A client at 203.0.113.N, another address than the other clients'."""
    return lambda number: TestClient(
        fresh_app, base_url=f"http://testserver{API}", client=(f"203.0.113.{number}", 50000)
    )


def test_login_is_limited_per_client_address(
    anonymous_client: TestClient, user: User, settings: Settings
) -> None:
    for _ in range(parse(settings.rate_limit_login).amount):
        assert login(anonymous_client, "wrong guess").status_code == 401

    response = login(anonymous_client)  # even the right password waits now

    assert_is_429(response)


def test_another_address_may_still_log_in(
    anonymous_client: TestClient,
    user: User,
    settings: Settings,
    from_address: Callable[[int], TestClient],
) -> None:
    guess = {"username": "nobody", "password": "wrong guess"}
    for _ in range(parse(settings.rate_limit_login).amount):
        anonymous_client.post("/auth/token", data=guess)
    assert_is_429(login(anonymous_client))

    assert login(from_address(7)).status_code == 200


def test_failed_logins_are_limited_per_username(
    user: User, settings: Settings, from_address: Callable[[int], TestClient]
) -> None:
    # Each guess from another address: the per-address limit alone would never stop them.
    for number in range(parse(settings.rate_limit_login).amount):
        assert login(from_address(number), "wrong guess").status_code == 401

    assert_is_429(login(from_address(99)))
    other = {"username": "bob", "password": "wrong guess"}
    assert from_address(99).post("/auth/token", data=other).status_code == 401


def test_a_strangers_guesses_do_not_lock_the_user_out_where_they_log_in(
    user: User, settings: Settings, from_address: Callable[[int], TestClient]
) -> None:
    assert login(from_address(7)).status_code == 200  # alice, at home
    for number in range(parse(settings.rate_limit_login).amount):  # a stranger, elsewhere
        assert login(from_address(number), "wrong guess").status_code == 401
    assert_is_429(login(from_address(99)))  # the guessing stops, wherever it comes from

    assert login(from_address(7)).status_code == 200  # and alice still gets in at home


def test_successful_logins_do_not_count_against_the_username(
    user: User, settings: Settings, from_address: Callable[[int], TestClient]
) -> None:
    for number in range(parse(settings.rate_limit_login).amount + 1):
        assert login(from_address(number)).status_code == 200


def test_registration_is_limited_per_client_address(
    anonymous_client: TestClient, settings: Settings, from_address: Callable[[int], TestClient]
) -> None:
    for number in range(parse(settings.rate_limit_register).amount):
        account = {"username": f"user{number}", "password": PASSWORD}
        assert anonymous_client.post("/auth/register", json=account).status_code == 201

    account = {"username": "one-too-many", "password": PASSWORD}
    assert_is_429(anonymous_client.post("/auth/register", json=account))
    assert from_address(7).post("/auth/register", json=account).status_code == 201


@pytest.fixture
def strict_api_limit(fresh_app: FastAPI, settings: Settings) -> None:
    """An API limit of three calls a minute, to reach it quickly."""
    fresh_app.state.rate_limits = RateLimits(
        settings.model_copy(update={"rate_limit_api": "3/minute"})
    )


def test_the_api_is_limited_per_user(
    client: TestClient, other_client: TestClient, strict_api_limit: None
) -> None:
    for _ in range(3):
        assert client.get("/tasks").status_code == 200

    assert_is_429(client.post("/tasks", json={"title": "One too many"}))
    assert_is_429(client.get("/conversations"))
    assert other_client.get("/tasks").status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/users/me", None),
        ("get", "/api-keys", None),
        ("get", "/tasks", None),
        ("post", "/agent/chat", {"message": "hello"}),
        ("get", "/conversations", None),
        ("get", "/runs", None),
    ],
)
def test_a_route_of_every_router_is_limited(
    client: TestClient,
    strict_api_limit: None,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    for _ in range(3):
        assert client.request(method, path, json=body).status_code == 200

    assert_is_429(client.request(method, path, json=body))


def test_a_limited_request_changes_nothing(
    app: FastAPI, client: TestClient, settings: Settings, strict_api_limit: None
) -> None:
    for _ in range(3):
        client.get("/tasks")

    client.post("/tasks", json={"title": "One too many"})

    app.state.rate_limits = RateLimits(settings)
    assert client.get("/tasks").json() == []


def test_limits_are_documented_in_openapi(service_client: TestClient) -> None:
    paths = service_client.get("/openapi.json").json()["paths"]

    assert "429" in paths[f"{API}/auth/token"]["post"]["responses"]
    assert "429" in paths[f"{API}/auth/register"]["post"]["responses"]
    assert "429" in paths[f"{API}/tasks"]["get"]["responses"]


@pytest.mark.parametrize("value", ["lots", "5 per fortnight", ""])
def test_a_limit_that_is_not_a_rate_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, rate_limit_api=value)  # type: ignore[call-arg]
