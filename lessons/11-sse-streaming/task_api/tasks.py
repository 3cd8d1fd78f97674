from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from task_api.deps import EventSubscriptionDep, TaskServiceDep
from task_api.models import (
    ErrorMessage,
    Task,
    TaskCreate,
    TaskPriority,
    TaskPublic,
    TaskStatus,
    TaskUpdate,
    as_json_errors,
)
from task_api.rate_limit import TOO_MANY_REQUESTS, limit_api_calls

# Every route here needs a bearer token (get_task_service depends on get_current_user),
# and counts against the caller's rate limit.
UNAUTHORIZED_OR_LIMITED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "Missing or invalid token"},
    **TOO_MANY_REQUESTS,
}
router = APIRouter(
    prefix="/tasks",
    tags=["tasks"],
    dependencies=[Depends(limit_api_calls)],
    responses=UNAUTHORIZED_OR_LIMITED,
)

# Documented in OpenAPI, so that a client knows which errors to expect from which route.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "There is no task with this id"}
}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorMessage, "description": "An open task already has this title"}
}


@router.get("", response_model=list[TaskPublic])
def list_tasks(
    service: TaskServiceDep,
    status: TaskStatus | None = None,
    priority: TaskPriority | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Task]:
    """List tasks, optionally only those of one status or priority, a page at a time."""
    return service.list_tasks(status=status, priority=priority, limit=limit, offset=offset)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses=as_json_errors(UNAUTHORIZED_OR_LIMITED),
)
async def stream_task_events(subscription: EventSubscriptionDep) -> AsyncIterator[ServerSentEvent]:
    """Your task changes as Server-Sent Events: `task.created`, `task.updated`, `task.deleted`.

    Reconnect with the `Last-Event-ID` header to receive the changes you missed.
    """
    if subscription.out_of_sync:
        yield ServerSentEvent(event="task.resync", data={"detail": "Reload GET /tasks"})
    for event in subscription.missed:
        yield ServerSentEvent(event=event.type, id=str(event.id), data=event.data)
    while True:
        event = await subscription.queue.get()
        yield ServerSentEvent(event=event.type, id=str(event.id), data=event.data)


@router.post("", status_code=201, response_model=TaskPublic, responses=CONFLICT)
def create_task(data: TaskCreate, response: Response, service: TaskServiceDep) -> Task:
    """Create a task. The `Location` header holds its URL."""
    task = service.create_task(data)
    response.headers["Location"] = f"/tasks/{task.id}"
    return task


@router.get("/{task_id}", response_model=TaskPublic, responses=NOT_FOUND)
def read_task(task_id: int, service: TaskServiceDep) -> Task:
    """Read one task by its id."""
    return service.get_task(task_id)


@router.put("/{task_id}", response_model=TaskPublic, responses=NOT_FOUND | CONFLICT)
def replace_task(task_id: int, data: TaskCreate, service: TaskServiceDep) -> Task:
    """Replace a task: fields left out go back to their defaults."""
    return service.replace_task(task_id, data)


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses={
        400: {"model": ErrorMessage, "description": "The body changes nothing"},
        **NOT_FOUND,
        **CONFLICT,
    },
)
def update_task(task_id: int, data: TaskUpdate, service: TaskServiceDep) -> Task:
    """Change some fields of a task and keep the rest."""
    return service.update_task(task_id, data)


@router.delete("/{task_id}", status_code=204, responses=NOT_FOUND)
def delete_task(task_id: int, service: TaskServiceDep) -> None:
    """Delete a task for good."""
    service.delete_task(task_id)
