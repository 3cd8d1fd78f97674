"""API keys for scripts: shown once, limited by their scopes, revoked for good."""

import httpx
import pytest
from conftest import User

pytestmark = pytest.mark.api_keys


def key_client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=f"{base_url}/api/v1", headers={"X-API-Key": key}, timeout=30)


def test_a_read_only_key_reads_and_changes_nothing(alice: User, base_url: str) -> None:
    made = alice.api.post("/api-keys", json={"name": "dashboard", "scopes": ["read"]})
    assert made.status_code == 201
    assert made.json()["scopes"] == ["read"]

    with key_client(base_url, made.json()["key"]) as script:
        assert script.get("/tasks").status_code == 200
        assert script.post("/tasks", json={"title": "Not allowed"}).status_code == 403
        assert script.post("/agent/chat", json={"message": "hi"}).status_code == 403


def test_the_key_is_shown_once_and_no_key_makes_keys(alice: User, base_url: str) -> None:
    made = alice.api.post("/api-keys", json={"name": "script"}).json()

    listed = {key["id"]: key for key in alice.api.get("/api-keys").json()}
    assert "key" not in listed[made["id"]]
    with key_client(base_url, made["key"]) as script:
        assert script.post("/api-keys", json={"name": "another"}).status_code in (401, 403)


def test_a_revoked_key_opens_nothing(alice: User, base_url: str) -> None:
    made = alice.api.post("/api-keys", json={"name": "short-lived"}).json()

    assert alice.api.delete(f"/api-keys/{made['id']}").status_code == 204

    with key_client(base_url, made["key"]) as script:
        assert script.get("/tasks").status_code == 401
