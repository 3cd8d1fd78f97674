from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from task_api.deps import CurrentUser, EventBrokerDep, TaskServiceDep, limit_api_calls
from task_api.errors import (
    BODY_ERRORS,
    DuplicateTask,
    EmptyUpdate,
    NotAuthenticated,
    TaskNotFound,
    TooManyRequests,
    responses,
)
from task_api.events import parse_event_id
from task_api.models import Task, TaskCreate, TaskPriority, TaskPublic, TaskStatus, TaskUpdate

# Every route here needs a token or an API key (get_task_service depends on
# get_current_user), and counts against the caller's rate limit.
router = APIRouter(
    prefix="/tasks",
    tags=["tasks"],
    dependencies=[Depends(limit_api_calls)],
    responses=responses(NotAuthenticated, TooManyRequests),
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


@dataclass
class EventsStart:
    """Where a client's task stream begins: after the event it saw last, or after now."""

    owner_id: int
    after_id: int
    resync: bool  # it missed more than is kept: it should reload the list


def start_task_events(
    user: CurrentUser,
    broker: EventBrokerDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventsStart:
    """Found before the response begins: no change made after the client sees the
    response start can slip past."""
    assert user.id is not None
    oldest, newest = broker.id_range()
    seen = parse_event_id(last_event_id)
    if seen is None:
        return EventsStart(user.id, newest, resync=False)
    if not oldest - 1 <= seen <= newest:  # purged since, or from before a reset
        return EventsStart(user.id, newest, resync=True)
    return EventsStart(user.id, seen, resync=False)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses=responses(NotAuthenticated, TooManyRequests, streaming=True),
)
async def stream_task_events(
    start: Annotated[EventsStart, Depends(start_task_events)], broker: EventBrokerDep
) -> AsyncIterator[ServerSentEvent]:
    """Your task changes as Server-Sent Events: `task.created`, `task.updated`, `task.deleted`.

    Reconnect with the `Last-Event-ID` header to receive the changes you missed; if too
    many are gone, a `task.resync` event says to reload `GET /tasks`. The changes come from
    every process of the service, whichever one this stream is connected to.
    """
    if start.resync:
        yield ServerSentEvent(event="task.resync", data={"detail": "Reload GET /tasks"})
    seen = start.after_id
    with broker.notifier.listening(f"tasks:{start.owner_id}") as signal:
        while True:
            for event in await run_in_threadpool(broker.events_after, start.owner_id, seen):
                yield ServerSentEvent(event=event.type, id=str(event.id), data=event.data)
                seen = event.id  # type: ignore[assignment]
            await signal.wait()


@router.post(
    "",
    status_code=201,
    response_model=TaskPublic,
    responses=responses(*BODY_ERRORS, DuplicateTask),
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
    responses=responses(*BODY_ERRORS, TaskNotFound, DuplicateTask),
)
def replace_task(task_id: int, data: TaskCreate, service: TaskServiceDep) -> Task:
    """Replace a task: fields left out go back to their defaults."""
    return service.replace_task(task_id, data)


@router.patch(
    "/{task_id}",
    response_model=TaskPublic,
    responses=responses(*BODY_ERRORS, EmptyUpdate, TaskNotFound, DuplicateTask),
)
def update_task(task_id: int, data: TaskUpdate, service: TaskServiceDep) -> Task:
    """Change some fields of a task and keep the rest."""
    return service.update_task(task_id, data)


@router.delete("/{task_id}", status_code=204, responses=responses(TaskNotFound))
def delete_task(task_id: int, service: TaskServiceDep) -> None:
    """Delete a task for good."""
    service.delete_task(task_id)
