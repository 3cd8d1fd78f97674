from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from task_api.main import app
from task_api.store import TaskStore, get_store


@pytest.fixture
def store() -> TaskStore:
    """A fresh, empty store, so no test sees another test's tasks."""
    return TaskStore()


@pytest.fixture
def client(store: TaskStore) -> Iterator[TestClient]:
    """A client whose requests reach the app with the test's store in place of the real one."""
    app.dependency_overrides[get_store] = lambda: store
    yield TestClient(app)
    app.dependency_overrides.clear()


@pytest.fixture
def task(client: TestClient) -> dict[str, Any]:
    """One task, created through the API."""
    response = client.post(
        "/tasks", json={"title": "Buy milk", "priority": "high", "due_date": "2026-12-01"}
    )
    assert response.status_code == 201, response.text
    return response.json()
