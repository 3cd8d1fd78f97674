from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from task_api.models import ErrorMessage, Task, TaskCreate, TaskPriority, TaskStatus, TaskUpdate
from task_api.store import TaskStore, get_store

router = APIRouter(prefix="/tasks", tags=["tasks"])

# Documented in OpenAPI, so that a client knows which errors to expect from which route.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "There is no task with this id"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorMessage, "description": "An open task already has this title"}
}


@router.get("")
def list_tasks(
    store: Annotated[TaskStore, Depends(get_store)],
    status: TaskStatus | None = None,
    priority: TaskPriority | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Task]:
    """List tasks, optionally only those of one status or priority, a page at a time."""
    return store.list_tasks(status=status, priority=priority, limit=limit, offset=offset)


@router.post("", status_code=201, responses=CONFLICT)
def create_task(
    data: TaskCreate, response: Response, store: Annotated[TaskStore, Depends(get_store)]
) -> Task:
    """Create a task. The `Location` header holds its URL."""
    task = store.create_task(data)
    response.headers["Location"] = f"/tasks/{task.id}"
    return task


@router.get("/{task_id}", responses=NOT_FOUND)
def read_task(task_id: int, store: Annotated[TaskStore, Depends(get_store)]) -> Task:
    """Read one task by its id."""
    return store.get_task(task_id)


@router.put("/{task_id}", responses=NOT_FOUND | CONFLICT)
def replace_task(
    task_id: int, data: TaskCreate, store: Annotated[TaskStore, Depends(get_store)]
) -> Task:
    """Replace a task: fields left out go back to their defaults."""
    return store.replace_task(task_id, data)


@router.patch(
    "/{task_id}",
    responses={
        400: {"model": ErrorMessage, "description": "The body changes nothing"},
        **NOT_FOUND,
        **CONFLICT,
    },
)
def update_task(
    task_id: int, data: TaskUpdate, store: Annotated[TaskStore, Depends(get_store)]
) -> Task:
    """Change some fields of a task and keep the rest."""
    return store.update_task(task_id, data)


@router.delete("/{task_id}", status_code=204, responses=NOT_FOUND)
def delete_task(task_id: int, store: Annotated[TaskStore, Depends(get_store)]) -> None:
    """Delete a task for good."""
    store.delete_task(task_id)
