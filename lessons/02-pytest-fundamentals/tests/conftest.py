from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from task_api.main import app
from task_api.store import TaskStore, get_store


@pytest.fixture
def store() -> TaskStore:
    """A fresh store with two known tasks, so no test sees another test's changes."""
    return TaskStore(
        [
            {
                "id": 1,
                "title": "Buy milk",
                "description": None,
                "status": "pending",
                "priority": "high",
                "due_date": "2026-12-01",
            },
            {
                "id": 2,
                "title": "Call the bank",
                "description": "About the new card.",
                "status": "completed",
                "priority": "low",
                "due_date": None,
            },
        ]
    )


@pytest.fixture
def client(store: TaskStore) -> Iterator[TestClient]:
    """A client whose requests reach the app with the test's store in place of the real one."""
    app.dependency_overrides[get_store] = lambda: store
    yield TestClient(app)
    app.dependency_overrides.clear()
