"""The same routes and rules, with the tasks kept in memory instead of the database."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from memory_repository import InMemoryTaskRepository
from sqlmodel import Session, select

from task_api.deps import get_task_repository
from task_api.errors import DuplicateTask, EmptyUpdate, TaskNotFound
from task_api.events import TaskEventBroker
from task_api.main import app
from task_api.models import Task, TaskCreate, TaskUpdate
from task_api.services import TaskService


@pytest.fixture
def repository() -> InMemoryTaskRepository:
    return InMemoryTaskRepository()


@pytest.fixture
def memory_client(client: TestClient, repository: InMemoryTaskRepository) -> Iterator[TestClient]:
    """Alice's client, with her tasks kept in `repository` rather than in the database."""
    app.dependency_overrides[get_task_repository] = lambda: repository
    yield client
    del app.dependency_overrides[get_task_repository]


def test_the_routes_work_on_any_repository(
    memory_client: TestClient, repository: InMemoryTaskRepository, session: Session
) -> None:
    created = memory_client.post("/tasks", json={"title": "Buy milk"})

    assert created.status_code == 201
    assert memory_client.get("/tasks").json() == [created.json()]
    assert [task.title for task in repository.tasks.values()] == ["Buy milk"]
    assert session.exec(select(Task)).all() == []  # nothing reached the database


def test_the_rules_hold_on_any_repository(memory_client: TestClient) -> None:
    memory_client.post("/tasks", json={"title": "Buy milk"})

    assert memory_client.post("/tasks", json={"title": "buy MILK"}).status_code == 409
    assert memory_client.patch("/tasks/1", json={}).status_code == 400
    assert memory_client.get("/tasks/2").status_code == 404


# The service needs no HTTP and no database at all: test its rules directly.


@pytest.fixture
def service(repository: InMemoryTaskRepository) -> TaskService:
    return TaskService(repository, owner_id=1, events=TaskEventBroker())


def test_service_creates_and_reads_tasks(service: TaskService) -> None:
    task = service.create_task(TaskCreate(title="Buy milk"))

    assert service.get_task(task.id or 0) == task
    assert service.list_tasks() == [task]


def test_service_refuses_a_second_open_task_with_the_same_title(service: TaskService) -> None:
    service.create_task(TaskCreate(title="Buy milk"))

    with pytest.raises(DuplicateTask):
        service.create_task(TaskCreate(title="BUY MILK"))


def test_a_refused_update_changes_nothing(service: TaskService) -> None:
    service.create_task(TaskCreate(title="Buy milk"))
    other = service.create_task(TaskCreate(title="Call the bank"))

    with pytest.raises(DuplicateTask):
        service.update_task(other.id or 0, TaskUpdate(title="Buy milk"))

    assert service.get_task(other.id or 0).title == "Call the bank"


def test_service_needs_something_to_update(service: TaskService) -> None:
    task = service.create_task(TaskCreate(title="Buy milk"))

    with pytest.raises(EmptyUpdate):
        service.update_task(task.id or 0, TaskUpdate())


def test_service_sees_only_its_owners_tasks(repository: InMemoryTaskRepository) -> None:
    alices = TaskService(repository, owner_id=1, events=TaskEventBroker())
    bobs = TaskService(repository, owner_id=2, events=TaskEventBroker())
    task = alices.create_task(TaskCreate(title="Buy milk"))

    assert bobs.list_tasks() == []
    with pytest.raises(TaskNotFound):
        bobs.delete_task(task.id or 0)
    assert alices.list_tasks() == [task]
