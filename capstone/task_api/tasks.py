from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from task_api.deps import (
    CredentialsDep,
    EventBrokerDep,
    TaskEventsStartDep,
    TaskServiceDep,
    hold_open,
    needs,
)
from task_api.errors import (
    DuplicateTask,
    EmptyUpdate,
    MissingScope,
    NotAuthenticated,
    TaskNotFound,
    TooManyRequests,
    responses,
)
from task_api.events import TaskEventType
from task_api.models import (
    Scope,
    Task,
    TaskCreate,
    TaskPriority,
    TaskPublic,
    TaskStatus,
    TaskUpdate,
)

# Every route here needs a token or an API key, and counts against the caller's rate limit:
# get_task_service depends on get_current_user. A key reads with `read`, changes with `write`.
router = APIRouter(
    prefix="/tasks",
    tags=["tasks"],
    dependencies=[needs(Scope.READ, Scope.WRITE)],
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests),
)


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
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests, streaming=True),
    dependencies=[Depends(hold_open)],
)
async def stream_task_events(
    start: TaskEventsStartDep, broker: EventBrokerDep, credentials: CredentialsDep
) -> AsyncIterator[ServerSentEvent]:
    """Your task changes as Server-Sent Events: `task.created`, `task.updated`, `task.deleted`.

    Reconnect with the `Last-Event-ID` header to receive the changes you missed; if too
    many are gone, a `task.resync` event says to reload `GET /tasks`. The changes come from
    every process of the service, whichever one this stream is connected to.
    """
    if start.resync:
        yield ServerSentEvent(event=TaskEventType.RESYNC, data={"detail": "Reload GET /tasks"})
    seen = start.after_id
    with broker.notifier.listening(f"tasks:{start.owner_id}") as signal:
        while True:
            for event in await run_in_threadpool(broker.events_after, start.owner_id, seen):
                yield ServerSentEvent(event=event.type, id=str(event.id), data=event.data)
                seen = event.id  # type: ignore[assignment]
            await signal.wait()
            if not await credentials.still_hold():  # a revoked key, an expired token
                return


@router.post(
    "",
    status_code=201,
    response_model=TaskPublic,
    responses=responses(DuplicateTask, reads_body=True),
)
def create_task(data: TaskCreate, response: Response, service: TaskServiceDep) -> Task:
    """Create a task. The `Location` header holds its URL."""
    task = service.create_task(data)
    response.headers["Location"] = f"/api/v1/tasks/{task.id}"
    return task


@router.get("/{task_id}", response_model=TaskPublic, responses=responses(TaskNotFound))
def read_task(task_id: int, service: TaskServiceDep) -> Task:
    """Read one task by its id."""
    return service.get_task(task_id)


@router.put(
    "/{task_id}",
    response_model=TaskPublic,
    responses=responses(TaskNotFound, DuplicateTask, reads_body=True),
)
def replace_task(task_id: int, data: TaskCreate, service: TaskServiceDep) -> Task:
    """Replace a task: fields left out go back to their defaults."""
    return service.replace_task(task_id, data)


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses=responses(EmptyUpdate, TaskNotFound, DuplicateTask, reads_body=True),
)
def update_task(task_id: int, data: TaskUpdate, service: TaskServiceDep) -> Task:
    """Change some fields of a task and keep the rest."""
    return service.update_task(task_id, data)


@router.delete("/{task_id}", status_code=204, responses=responses(TaskNotFound))
def delete_task(task_id: int, service: TaskServiceDep) -> None:
    """Delete a task for good."""
    service.delete_task(task_id)
