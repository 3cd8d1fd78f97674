"""API keys: made, listed and revoked by their owner; each opens the API like a login."""

from typing import Any

import pytest
from conftest import API, strings_in
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from task_api.models import ApiKey


def make_key(client: TestClient, name: str = "nightly script") -> dict[str, Any]:
    response = client.post("/api-keys", json={"name": name})
    assert response.status_code == 201, response.text
    return response.json()


def with_key(app: FastAPI, key: str | bytes) -> TestClient:
    return TestClient(app, base_url=f"http://testserver{API}", headers={"X-API-Key": key})  # type: ignore[dict-item]


def test_a_new_key_is_shown_once(client: TestClient) -> None:
    created = make_key(client)

    assert set(created) == {"id", "name", "prefix", "scopes", "key", "created_at"}
    assert created["scopes"] == ["read", "write", "agent"]  # by default
    assert created["key"].startswith(created["prefix"])
    listed = client.get("/api-keys").json()
    assert listed == [{k: v for k, v in created.items() if k != "key"}]
    assert [text for text in strings_in(listed) if created["key"] in text] == []


def test_a_key_opens_the_api_as_its_owner(app: FastAPI, client: TestClient) -> None:
    key = make_key(client)["key"]
    program = with_key(app, key)

    created = program.post("/tasks", json={"title": "Made by a program"})

    assert created.status_code == 201
    assert program.get("/users/me").json()["username"] == "alice"
    assert client.get("/tasks").json() == [created.json()]


def test_only_a_hash_of_the_key_is_stored(client: TestClient, session: Session) -> None:
    key = make_key(client)["key"]

    stored = session.exec(select(ApiKey)).one()

    assert key not in (stored.hashed_key, stored.prefix, stored.name)
    assert len(stored.hashed_key) == 64


def test_a_revoked_key_opens_nothing(app: FastAPI, client: TestClient) -> None:
    created = make_key(client)
    program = with_key(app, created["key"])
    assert program.get("/tasks").status_code == 200  # it worked: nothing else explains a 401

    assert client.delete(f"/api-keys/{created['id']}").status_code == 204

    response = program.get("/tasks")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/api-keys").json() == []


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("", id="empty"),
        pytest.param("tm_" + "x" * 43, id="made-up"),
        pytest.param("not-a-key", id="garbage"),
        pytest.param(b"tm_" + b"\xe9" * 43, id="not-ascii"),
        pytest.param("x" * 5000, id="huge"),
    ],
)
def test_a_key_we_did_not_make_is_401(app: FastAPI, client: TestClient, key: str | bytes) -> None:
    make_key(client)

    response = with_key(app, key).get("/tasks")

    assert response.status_code == 401


def test_a_key_that_differs_after_its_prefix_is_401(app: FastAPI, client: TestClient) -> None:
    key = make_key(client)["key"]
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")

    assert with_key(app, forged).get("/tasks").status_code == 401


def test_keys_belong_to_their_owner(client: TestClient, other_client: TestClient) -> None:
    alices = make_key(client)

    assert other_client.get("/api-keys").json() == []
    response = other_client.delete(f"/api-keys/{alices['id']}")
    assert response.status_code == 404
    assert response.json()["detail"] == f"API key {alices['id']} not found"
    assert len(client.get("/api-keys").json()) == 1


@pytest.mark.parametrize("key_id", [0, -1, 2**31, 2**63])
def test_ids_no_key_has_are_404(client: TestClient, key_id: int) -> None:
    assert client.delete(f"/api-keys/{key_id}").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "a\x00b"},
        {"name": "ok", "x": 1},
    ],
)
def test_a_bad_key_name_is_422(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/api-keys", json=body).status_code == 422
    assert client.get("/api-keys").json() == []


def test_keys_need_a_login(anonymous_client: TestClient) -> None:
    assert anonymous_client.post("/api-keys", json={"name": "x"}).status_code == 401
    assert anonymous_client.get("/api-keys").status_code == 401


def test_a_new_key_is_never_cached(client: TestClient) -> None:
    response = client.post("/api-keys", json={"name": "cron"})

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"


def test_a_read_only_key_reads_and_changes_nothing(app: FastAPI, client: TestClient) -> None:
    client.post("/tasks", json={"title": "Buy milk"})
    created = client.post("/api-keys", json={"name": "dashboard", "scopes": ["read"]}).json()
    program = with_key(app, created["key"])

    assert created["scopes"] == ["read"]
    assert [task["title"] for task in program.get("/tasks").json()] == ["Buy milk"]
    for refused in (
        program.post("/tasks", json={"title": "Sneaked in"}),
        program.delete("/tasks/1"),
        program.post("/agent/chat", json={"message": "Delete task 1"}),
        program.post("/runs", json={"message": "Delete task 1"}),
    ):
        assert refused.status_code == 403, refused.request.url
        assert refused.json()["detail"].startswith("This API key may not do this: it lacks")
    assert [task["title"] for task in client.get("/tasks").json()] == ["Buy milk"]
    assert client.get("/runs").json() == []


def test_no_key_manages_keys(app: FastAPI, client: TestClient) -> None:
    created = make_key(client)  # every scope
    program = with_key(app, created["key"])

    made = program.post("/api-keys", json={"name": "backdoor"})
    revoked = program.delete(f"/api-keys/{created['id']}")
    listed = program.get("/api-keys")

    assert (made.status_code, revoked.status_code, listed.status_code) == (403, 403, 403)
    assert made.json()["detail"] == "No API key makes or revokes keys: log in to do it"
    assert [key["name"] for key in client.get("/api-keys").json()] == [created["name"]]


@pytest.mark.parametrize("scopes", [[], ["admin"], ["read", "read", "read", "read"]])
def test_scopes_must_be_known(client: TestClient, scopes: list[str]) -> None:
    response = client.post("/api-keys", json={"name": "odd", "scopes": scopes})

    assert response.status_code == 422
    assert client.get("/api-keys").json() == []
