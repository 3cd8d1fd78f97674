from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException

from task_api.store import Task, TaskStore, get_store

router = APIRouter(prefix="/tasks", tags=["tasks"])


@router.get("")
def list_tasks(store: Annotated[TaskStore, Depends(get_store)]) -> list[Task]:
    """List every task."""
    return store.list_tasks()


@router.get("/{task_id}")
def read_task(task_id: int, store: Annotated[TaskStore, Depends(get_store)]) -> Task:
    """Read one task by its id."""
    task = store.get_task(task_id)
    if task is None:
        raise HTTPException(status_code=404, detail=f"Task {task_id} not found")
    return task
