from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response

from task_api.models import Task, TaskCreate
from task_api.store import TaskStore, get_store

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("")
def list_tasks(store: Annotated[TaskStore, Depends(get_store)]) -> list[Task]:
    """List every task."""
    return store.list_tasks()


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
