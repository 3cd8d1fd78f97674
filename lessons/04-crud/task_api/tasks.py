from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from task_api.models import Task, TaskCreate, TaskPriority, TaskStatus, TaskUpdate
from task_api.store import TaskStore, get_store

router = APIRouter(prefix="/tasks", tags=["tasks"])


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


@router.post("", status_code=201)
def create_task(
    data: TaskCreate, response: Response, store: Annotated[TaskStore, Depends(get_store)]
) -> Task:
    """Create a task. The `Location` header holds its URL."""
    task = store.create_task(data)
    response.headers["Location"] = f"/tasks/{task.id}"
    return task


@router.get("/{task_id}")
def read_task(task_id: int, store: Annotated[TaskStore, Depends(get_store)]) -> Task:
    """Read one task by its id."""
    task = store.get_task(task_id)
    if task is None:
        raise HTTPException(status_code=404, detail=f"Task {task_id} not found")
    return task


@router.put("/{task_id}")
def replace_task(
    task_id: int, data: TaskCreate, store: Annotated[TaskStore, Depends(get_store)]
) -> Task:
    """Replace a task: fields left out go back to their defaults."""
    task = store.replace_task(task_id, data)
    if task is None:
        raise HTTPException(status_code=404, detail=f"Task {task_id} not found")
    return task


@router.patch("/{task_id}")
def update_task(
    task_id: int, data: TaskUpdate, store: Annotated[TaskStore, Depends(get_store)]
) -> Task:
    """Change some fields of a task and keep the rest."""
    task = store.update_task(task_id, data)
    if task is None:
        raise HTTPException(status_code=404, detail=f"Task {task_id} not found")
    return task


@router.delete("/{task_id}", status_code=204)
def delete_task(task_id: int, store: Annotated[TaskStore, Depends(get_store)]) -> None:
    """Delete a task for good."""
    if not store.delete_task(task_id):
        raise HTTPException(status_code=404, detail=f"Task {task_id} not found")
