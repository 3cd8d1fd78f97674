from typing import Any
from unittest.mock import ANY

import pytest
from conftest import strings_in
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
        "created_at": ANY,
        "updated_at": ANY,
    }
    assert response.headers["Location"] == "/api/v1/tasks/1"


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
    assert [text for text in strings_in(response.json()) if "hunter2" in text] == []


def test_a_422_lists_at_most_ten_problems(client: TestClient) -> None:
    body = {"title": "Ok"} | {f"typo{n}": n for n in range(15)}  # 15 problems

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


@pytest.mark.parametrize("task_id", ["abc", "1.5", "one"])
def test_task_id_must_be_an_integer(client: TestClient, task_id: str) -> None:
    response = client.get(f"/tasks/{task_id}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "task_id"]


@pytest.fixture
def tasks(client: TestClient) -> list[dict[str, Any]]:
    """Four tasks of different status and priority."""
    bodies = [
        {"title": "Buy milk", "priority": "high"},
        {"title": "Call the bank", "status": "in_progress"},
        {"title": "Water the plants", "status": "completed", "priority": "low"},
        {"title": "Book a dentist", "priority": "high"},
    ]
    return [client.post("/tasks", json=body).json() for body in bodies]


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("", ["Buy milk", "Call the bank", "Water the plants", "Book a dentist"]),
        ("?status=pending", ["Buy milk", "Book a dentist"]),
        ("?status=completed", ["Water the plants"]),
        ("?priority=high", ["Buy milk", "Book a dentist"]),
        ("?status=pending&priority=low", []),
        ("?limit=2", ["Buy milk", "Call the bank"]),
        ("?limit=2&offset=2", ["Water the plants", "Book a dentist"]),
        ("?offset=10", []),
    ],
)
def test_list_tasks_filters_and_pages(
    client: TestClient, tasks: list[dict[str, Any]], query: str, titles: list[str]
) -> None:
    response = client.get(f"/tasks{query}")

    assert response.status_code == 200
    assert [task["title"] for task in response.json()] == titles


@pytest.mark.parametrize(
    "query",
    ["?status=done", "?priority=urgent", "?limit=0", "?limit=101", "?offset=-1", "?limit=ten"],
)
def test_list_tasks_rejects_bad_query(client: TestClient, query: str) -> None:
    response = client.get(f"/tasks{query}")

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "query"


def test_replace_task(client: TestClient, task: dict[str, Any]) -> None:
    response = client.put(f"/tasks/{task['id']}", json={"title": "Buy oat milk"})

    assert response.status_code == 200
    assert response.json() == {
        "id": task["id"],
        "title": "Buy oat milk",
        "description": None,
        "status": "pending",
        "priority": "medium",
        "due_date": None,
        "created_at": task["created_at"],
        "updated_at": ANY,
    }
    assert client.get(f"/tasks/{task['id']}").json() == response.json()


def test_replace_task_needs_a_title(client: TestClient, task: dict[str, Any]) -> None:
    response = client.put(f"/tasks/{task['id']}", json={"priority": "low"})

    assert response.status_code == 422
    assert client.get(f"/tasks/{task['id']}").json() == task


def test_update_task_changes_only_what_is_sent(client: TestClient, task: dict[str, Any]) -> None:
    response = client.patch(f"/tasks/{task['id']}", json={"status": "completed"})

    assert response.status_code == 200
    assert response.json() == {**task, "status": "completed", "updated_at": ANY}


def test_update_task_can_clear_the_due_date(client: TestClient, task: dict[str, Any]) -> None:
    response = client.patch(f"/tasks/{task['id']}", json={"due_date": None})

    assert response.json()["due_date"] is None


@pytest.mark.parametrize(
    "body",
    [
        {"title": None},
        {"title": ""},
        {"status": None},
        {"status": "done"},
        {"priority": None},
        {"due_date": "soon"},
        {"id": 7},
    ],
)
def test_update_task_rejects_bad_input(
    client: TestClient, task: dict[str, Any], body: dict[str, Any]
) -> None:
    response = client.patch(f"/tasks/{task['id']}", json=body)

    assert response.status_code == 422
    assert client.get(f"/tasks/{task['id']}").json() == task


def test_delete_task(client: TestClient, task: dict[str, Any]) -> None:
    response = client.delete(f"/tasks/{task['id']}")

    assert response.status_code == 204
    assert response.content == b""
    assert client.get(f"/tasks/{task['id']}").status_code == 404


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("put", {"title": "New"}), ("patch", {"title": "New"}), ("delete", None)],
)
def test_missing_task_is_404_for_every_method(
    client: TestClient, method: str, body: dict[str, Any] | None
) -> None:
    response = client.request(method, "/tasks/99", json=body)

    assert response.status_code == 404
    assert response.json()["detail"] == "Task 99 not found"


def test_create_task_with_the_title_of_an_open_task_is_409(
    client: TestClient, task: dict[str, Any]
) -> None:
    response = client.post("/tasks", json={"title": "  BUY MILK "})

    assert response.status_code == 409
    assert response.json()["detail"] == "An open task is already titled 'BUY MILK'"
    assert len(client.get("/tasks").json()) == 1


def test_a_completed_task_frees_its_title(client: TestClient, task: dict[str, Any]) -> None:
    client.patch(f"/tasks/{task['id']}", json={"status": "completed"})

    response = client.post("/tasks", json={"title": "Buy milk"})

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("put", {"title": "Buy milk"}),
        ("patch", {"title": "buy milk"}),
    ],
)
def test_renaming_to_the_title_of_another_open_task_is_409(
    client: TestClient, task: dict[str, Any], method: str, body: dict[str, Any]
) -> None:
    other = client.post("/tasks", json={"title": "Call the bank"}).json()

    response = client.request(method, f"/tasks/{other['id']}", json=body)

    assert response.status_code == 409
    assert client.get(f"/tasks/{other['id']}").json() == other


def test_a_task_may_keep_its_own_title(client: TestClient, task: dict[str, Any]) -> None:
    response = client.put(f"/tasks/{task['id']}", json={"title": "Buy milk", "priority": "low"})

    assert response.status_code == 200


def test_update_task_with_nothing_to_change_is_400(
    client: TestClient, task: dict[str, Any]
) -> None:
    response = client.patch(f"/tasks/{task['id']}", json={})

    assert response.status_code == 400
    assert response.json()["detail"] == "Send at least one field to change"


def test_update_missing_task_with_nothing_to_change_is_404(client: TestClient) -> None:
    response = client.patch("/tasks/99", json={})

    assert response.status_code == 404


def test_errors_are_documented_in_openapi(service_client: TestClient) -> None:
    paths = service_client.get("/openapi.json").json()["paths"]

    assert set(paths["/api/v1/tasks/{task_id}"]["patch"]["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "422",
        "429",
        "503",
    }
    assert set(paths["/api/v1/tasks/{task_id}"]["delete"]["responses"]) == {
        "204",
        "401",
        "403",
        "404",
        "422",
        "429",
        "503",
    }
    # A route that reads a body may also answer 400 (unreadable) and 413 (too large).
    assert set(paths["/api/v1/tasks"]["post"]["responses"]) == {
        "201",
        "400",
        "401",
        "403",
        "409",
        "413",
        "422",
        "429",
        "503",
    }


def test_a_body_of_thousands_of_fields_is_one_error(client: TestClient) -> None:
    body = {"title": "Buy milk", **{f"field{n}": n for n in range(10_000)}}

    response = client.post("/tasks", json=body)

    assert response.status_code == 422
    [error] = response.json()["detail"]  # one, not ten thousand made and cut to ten
    assert error["msg"] == "Value error, A body has at most 20 fields"
    assert client.get("/tasks").json() == []
