"""A service: every route under /api/v1, health and readiness, request ids, plain errors."""

import httpx
import pytest

pytestmark = pytest.mark.service


def test_health_says_the_process_is_up(base_url: str) -> None:
    reply = httpx.get(f"{base_url}/health")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


def test_ready_says_the_database_answers(base_url: str) -> None:
    reply = httpx.get(f"{base_url}/ready")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ready"


def test_the_api_lives_under_api_v1(base_url: str) -> None:
    assert httpx.get(f"{base_url}/api/v1/tasks").status_code == 401  # there, and protected
    assert httpx.get(f"{base_url}/tasks").status_code == 404  # not at the root


def test_each_answer_carries_a_request_id_and_echoes_a_good_one(base_url: str) -> None:
    made = httpx.get(f"{base_url}/health").headers["X-Request-ID"]
    echoed = httpx.get(f"{base_url}/health", headers={"X-Request-ID": "spec-1234"})

    assert len(made) >= 16
    assert echoed.headers["X-Request-ID"] == "spec-1234"


def test_errors_are_json_with_a_detail(alice_api: httpx.Client) -> None:
    missing = alice_api.get("/tasks/999999")
    invalid = alice_api.post("/tasks", json={"title": ""})

    assert missing.status_code == 404 and isinstance(missing.json()["detail"], str)
    assert invalid.status_code == 422 and invalid.json()["detail"]


def test_the_openapi_document_names_every_part(base_url: str) -> None:
    document = httpx.get(f"{base_url}/openapi.json").json()
    paths = set(document["paths"])

    for path in (
        "/api/v1/agent/chat",
        "/api/v1/conversations",
        "/api/v1/api-keys",
        "/api/v1/runs",
        "/api/v1/runs/{run_id}/events",
    ):
        assert path in paths
