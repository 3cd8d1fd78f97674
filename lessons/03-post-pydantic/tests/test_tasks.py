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


def post_raw(client: TestClient, content: str | bytes) -> Any:
    """POST a body exactly as given, where `json=` would refuse to write it."""
    return client.post("/tasks", content=content, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize(
    ("content", "error_type"),
    [
        ("not json", "json_invalid"),
        ('{"title": "unclosed', "json_invalid"),
        ("[1, 2]", "model_attributes_type"),
    ],
)
def test_create_task_rejects_a_body_that_is_not_a_task(
    client: TestClient, content: str, error_type: str
) -> None:
    response = post_raw(client, content)

    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == error_type
    assert client.get("/tasks").json() == []


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"title": NaN}', id="nan"),
        pytest.param('{"title": "Ok", "due_date": Infinity}', id="infinity"),
        pytest.param('{"title": "\\ud800"}', id="lone-surrogate"),
        pytest.param('{"title": "Ok", "\\ud800": 1}', id="lone-surrogate-key"),
        pytest.param(b'{"title": "\xed\xa0\x80"}', id="surrogate-bytes"),
    ],
)
def test_create_task_rejects_json_that_is_not_strict_json(
    client: TestClient, content: str | bytes
) -> None:
    # Python's json module reads these; a JSON answer cannot hold them.
    response = post_raw(client, content)

    assert response.status_code == 422
    assert client.get("/tasks").json() == []


def test_a_422_does_not_echo_what_was_sent(client: TestClient) -> None:
    title = "x" * 1_000_000

    response = client.post("/tasks", json={"title": title, "secret": "hunter2"})

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [
        ["body", "title"],
        ["body", "secret"],
    ]
    assert len(response.content) < 1000
    assert "hunter2" not in response.text


def test_a_422_lists_at_most_ten_problems(client: TestClient) -> None:
    body = {"title": "Ok"} | {f"typo{n}": n for n in range(1000)}

    response = client.post("/tasks", json=body)

    assert response.status_code == 422
    assert len(response.json()["detail"]) == 10


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
