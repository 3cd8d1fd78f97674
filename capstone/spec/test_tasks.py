"""Tasks under /api/v1, each user's own."""

import uuid

import pytest
from conftest import User

pytestmark = pytest.mark.tasks


def test_a_task_is_made_read_changed_and_deleted(alice: User) -> None:
    title = f"Spec task {uuid.uuid4().hex[:8]}"
    made = alice.api.post("/tasks", json={"title": title, "priority": "high"})
    assert made.status_code == 201
    task_id = made.json()["id"]

    assert alice.api.get(f"/tasks/{task_id}").json()["title"] == title
    changed = alice.api.patch(f"/tasks/{task_id}", json={"status": "completed"})
    assert changed.json()["status"] == "completed"
    assert alice.api.delete(f"/tasks/{task_id}").status_code == 204
    assert alice.api.get(f"/tasks/{task_id}").status_code == 404


def test_another_users_task_is_not_found(alice: User, bob: User) -> None:
    task_id = alice.api.post("/tasks", json={"title": f"Mine {uuid.uuid4().hex[:8]}"}).json()["id"]

    assert bob.api.get(f"/tasks/{task_id}").status_code == 404
    assert bob.api.delete(f"/tasks/{task_id}").status_code == 404
    assert task_id not in [task["id"] for task in bob.api.get("/tasks").json()]
    assert alice.api.get(f"/tasks/{task_id}").status_code == 200  # and it is still there
