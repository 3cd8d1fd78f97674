import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from task_api.config import Settings, get_settings

# The app reads its settings once, as it is imported (the title of its OpenAPI document).
# Let that read see the defaults, whatever your .env file or your shell says; then import it.
Settings.model_config["env_file"] = None
for name in Settings.model_fields:
    os.environ.pop(name.upper(), None)

from task_api.main import app
from task_api.store import TaskStore, get_store


@pytest.fixture
def store() -> TaskStore:
    """A fresh, empty store, so no test sees another test's tasks."""
    return TaskStore()


@pytest.fixture
def settings() -> Settings:
    """Settings for tests: the defaults, whatever your environment or .env file says."""
    return Settings(_env_file=None, app_name="Test API", environment="development")


@pytest.fixture
def client(store: TaskStore, settings: Settings) -> Iterator[TestClient]:
    """A client whose requests reach the app with the test's store and settings."""
    app.dependency_overrides[get_store] = lambda: store
    app.dependency_overrides[get_settings] = lambda: settings
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
