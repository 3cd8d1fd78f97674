import pytest
from fastapi.testclient import TestClient

from task_api.store import TaskStore


def test_list_tasks_returns_every_task(client: TestClient) -> None:
    response = client.get("/tasks")

    assert response.status_code == 200
    assert [task["title"] for task in response.json()] == ["Buy milk", "Call the bank"]


def test_list_tasks_is_empty_without_tasks(client: TestClient, store: TaskStore) -> None:
    store.tasks.clear()

    response = client.get("/tasks")

    assert response.status_code == 200
    assert response.json() == []


def test_read_task(client: TestClient) -> None:
    response = client.get("/tasks/1")

    assert response.status_code == 200
    assert response.json() == {
        "id": 1,
        "title": "Buy milk",
        "description": None,
        "status": "pending",
        "priority": "high",
        "due_date": "2026-12-01",
    }


def test_read_missing_task_is_404(client: TestClient) -> None:
    response = client.get("/tasks/99")

    assert response.status_code == 404
    assert response.json() == {"detail": "Task 99 not found"}


@pytest.mark.parametrize("task_id", ["abc", "1.5", "one"])
def test_task_id_must_be_an_integer(client: TestClient, task_id: str) -> None:
    response = client.get(f"/tasks/{task_id}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task_id"]
