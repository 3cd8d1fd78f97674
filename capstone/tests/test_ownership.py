"""A user sees and changes only their own tasks, by every route."""

from typing import Any

import pytest
from fastapi.testclient import TestClient


def test_others_do_not_see_my_tasks_in_the_list(
    client: TestClient, other_client: TestClient, task: dict[str, Any]
) -> None:
    assert other_client.get("/tasks").json() == []
    assert client.get("/tasks").json() == [task]


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("get", None),
        ("put", {"title": "Mine now"}),
        ("patch", {"status": "completed"}),
        ("delete", None),
    ],
)
def test_others_get_404_for_my_task_and_change_nothing(
    client: TestClient,
    other_client: TestClient,
    task: dict[str, Any],
    method: str,
    body: dict[str, Any] | None,
) -> None:
    response = other_client.request(method, f"/tasks/{task['id']}", json=body)

    assert response.status_code == 404
    assert response.json()["detail"] == f"Task {task['id']} not found"
    assert client.get(f"/tasks/{task['id']}").json() == task


def test_others_may_use_the_same_title(other_client: TestClient, task: dict[str, Any]) -> None:
    response = other_client.post("/tasks", json={"title": task["title"]})

    assert response.status_code == 201


def test_users_me_is_the_caller(client: TestClient, other_client: TestClient) -> None:
    assert client.get("/users/me").json()["username"] == "alice"
    assert other_client.get("/users/me").json()["username"] == "bob"
