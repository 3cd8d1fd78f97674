from typing import Any

import pytest
from fastapi.testclient import TestClient


def test_create_task(client: TestClient) -> None:
    response = client.post(
        "/tasks", json={"title": "Buy milk", "priority": "high", "due_date": "2026-12-01"}
    )

    assert response.status_code == 201
    assert response.json() == {
        "id": 1,
        "title": "Buy milk",
        "description": None,
        "status": "pending",
        "priority": "high",
        "due_date": "2026-12-01",
    }
    assert response.headers["Location"] == "/tasks/1"


def test_create_task_fills_in_defaults(client: TestClient) -> None:
    response = client.post("/tasks", json={"title": "Call the bank"})

    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    assert response.json()["priority"] == "medium"
    assert response.json()["due_date"] is None


def test_create_task_strips_the_title(client: TestClient) -> None:
    response = client.post("/tasks", json={"title": "  Buy milk  "})

    assert response.json()["title"] == "Buy milk"


def test_created_tasks_get_their_own_ids(client: TestClient) -> None:
    first = client.post("/tasks", json={"title": "One"}).json()
    second = client.post("/tasks", json={"title": "Two"}).json()

    assert (first["id"], second["id"]) == (1, 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "title"),
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": 42}, "title"),
        ({"title": "Ok", "description": "x" * 2001}, "description"),
        ({"title": "Ok", "status": "done"}, "status"),
        ({"title": "Ok", "priority": "urgent"}, "priority"),
        ({"title": "Ok", "due_date": "next friday"}, "due_date"),
        ({"title": "Ok", "due_date": "2026-02-30"}, "due_date"),
        ({"title": "Ok", "titel": "typo"}, "titel"),
    ],
)
def test_create_task_rejects_bad_input(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/tasks", json=body)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]
    assert client.get("/tasks").json() == []


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"title": "unclosed'])
def test_create_task_rejects_a_body_that_is_not_a_task(client: TestClient, content: str) -> None:
    response = client.post("/tasks", content=content, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert "detail" in response.json()


def test_list_tasks_is_empty_at_first(client: TestClient) -> None:
    response = client.get("/tasks")

    assert response.status_code == 200
    assert response.json() == []


def test_list_tasks_returns_created_tasks(client: TestClient, task: dict[str, Any]) -> None:
    response = client.get("/tasks")

    assert response.status_code == 200
    assert response.json() == [task]


def test_read_task(client: TestClient, task: dict[str, Any]) -> None:
    response = client.get(f"/tasks/{task['id']}")

    assert response.status_code == 200
    assert response.json() == task


def test_read_missing_task_is_404(client: TestClient) -> None:
    response = client.get("/tasks/99")

    assert response.status_code == 404
    assert response.json() == {"detail": "Task 99 not found"}


@pytest.mark.parametrize("task_id", ["abc", "1.5", "one"])
def test_task_id_must_be_an_integer(client: TestClient, task_id: str) -> None:
    response = client.get(f"/tasks/{task_id}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task_id"]
