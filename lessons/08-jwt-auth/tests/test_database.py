from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import bearer, create_user
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect
from sqlmodel import Session, SQLModel, select

from task_api import database
from task_api.config import Settings, get_settings
from task_api.database import create_db_engine, get_session, normalize_database_url
from task_api.main import app
from task_api.models import Task, User


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///./tasks.db", "sqlite:///./tasks.db"),
        ("postgres://u:p@db.example.com/app", "postgresql+psycopg://u:p@db.example.com/app"),
        (
            "postgresql://u:p@ep-cool-name-123.eu-central-1.aws.neon.tech/neondb?sslmode=require",
            "postgresql+psycopg://u:p@ep-cool-name-123.eu-central-1.aws.neon.tech/neondb"
            "?sslmode=require",
        ),
        ("postgresql+psycopg://u@localhost/app", "postgresql+psycopg://u@localhost/app"),
    ],
)
def test_database_urls_are_accepted_as_pasted(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


def test_tasks_are_stored_in_the_database(client: TestClient, session: Session) -> None:
    client.post("/tasks", json={"title": "Buy milk", "status": "in_progress"})

    stored = session.exec(select(Task)).one()

    assert (stored.title, stored.status) == ("Buy milk", "in_progress")


def test_timestamps_are_utc_iso_8601(task: dict[str, Any]) -> None:
    created_at = datetime.fromisoformat(task["created_at"])

    assert created_at.utcoffset() is not None
    assert created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert task["updated_at"] >= task["created_at"]


def test_a_change_moves_updated_at_only(client: TestClient, task: dict[str, Any]) -> None:
    changed = client.patch(f"/tasks/{task['id']}", json={"priority": "low"}).json()

    assert changed["created_at"] == task["created_at"]
    assert changed["updated_at"] > task["updated_at"]


def test_a_refused_change_leaves_the_database_alone(
    client: TestClient, task: dict[str, Any]
) -> None:
    other = client.post("/tasks", json={"title": "Call the bank"}).json()

    client.patch(f"/tasks/{other['id']}", json={"title": "Buy milk", "priority": "high"})

    assert client.get(f"/tasks/{other['id']}").json() == other


@pytest.mark.parametrize("field", ["title", "description"])
def test_text_with_a_nul_character_is_422(client: TestClient, field: str) -> None:
    body = {"title": "Buy milk", field: "Buy\x00milk"}

    response = client.post("/tasks", json=body)

    assert response.status_code == 422
    assert client.get("/tasks").json() == []


@pytest.mark.parametrize(
    "task_id",
    [
        pytest.param(2**31, id="past-a-postgresql-integer"),
        pytest.param(2**63, id="past-a-sqlite-integer"),
    ],
)
def test_ids_no_column_can_hold_are_404(client: TestClient, task_id: int) -> None:
    # Passed to the database, they would be an error there (a 500), not a task that is missing.
    assert client.get(f"/tasks/{task_id}").status_code == 404
    assert client.delete(f"/tasks/{task_id}").status_code == 404


def test_a_deleted_tasks_id_is_never_reused(client: TestClient, task: dict[str, Any]) -> None:
    client.delete(f"/tasks/{task['id']}")

    response = client.post("/tasks", json={"title": "Call the bank"})

    assert response.json()["id"] > task["id"]


def test_a_huge_offset_is_an_empty_page(client: TestClient, task: dict[str, Any]) -> None:
    response = client.get("/tasks", params={"offset": 10**30})

    assert response.status_code == 200
    assert response.json() == []


def test_tasks_survive_a_restart(tmp_path: Path, settings: Settings) -> None:
    url = f"sqlite:///{tmp_path / 'tasks.db'}"

    def run_app_once(method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Start the app on a fresh engine, as a new process would, and make one request."""
        engine = create_db_engine(url)
        SQLModel.metadata.create_all(engine)
        with Session(engine) as session:
            user = session.exec(select(User)).first() or create_user(session, "alice")
            app.dependency_overrides[get_session] = lambda: session
            app.dependency_overrides[get_settings] = lambda: settings
            client = TestClient(app, headers=bearer(user, settings))
            response = client.request(method, path, json=body)
            app.dependency_overrides.clear()
        engine.dispose()
        return response.json()

    created = run_app_once("POST", "/tasks", {"title": "Buy milk"})

    assert run_app_once("GET", f"/tasks/{created['id']}") == created


def test_tables_are_created_at_start_up(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    SQLModel.metadata.drop_all(engine)
    monkeypatch.setattr(database, "engine", engine)

    with TestClient(app):  # entering the client runs the lifespan, as a server start does
        assert inspect(engine).has_table("task")
