"""Background runs: a message for the agents to work on without holding a request open.

POST /runs answers 202 at once; a worker (in this process or another) carries the run out.
Its status, its result and its events are there for any process to answer.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlmodel import Session, col, select

from task_api.deps import CurrentUser, SessionDep, SettingsDep, limit_api_calls
from task_api.errors import (
    BODY_ERRORS,
    ConversationNotFound,
    NotAuthenticated,
    RunNotFound,
    TooManyRequests,
    WebhookRefused,
    responses,
)
from task_api.events import parse_event_id
from task_api.memory import ConversationStore
from task_api.models import (
    FINAL_STATUSES,
    MAX_ID,
    AgentRun,
    AgentRunEvent,
    Progress,
    RunAccepted,
    RunCreate,
    RunPublic,
    RunStatus,
    WebhookAttempt,
    WebhookAttemptPublic,
)
from task_api.run_queue import RunQueue, run_channel
from task_api.webhooks import UnsafeWebhook, resolve_webhook

router = APIRouter(
    prefix="/runs",
    tags=["runs"],
    dependencies=[Depends(limit_api_calls)],
    responses=responses(NotAuthenticated, TooManyRequests),
)


def get_run_queue(request: Request) -> RunQueue:
    return request.app.state.run_queue  # type: ignore[no-any-return]


RunQueueDep = Annotated[RunQueue, Depends(get_run_queue)]


def run_of(run_id: int, user: CurrentUser, session: SessionDep) -> AgentRun:
    """The caller's run: someone else's is "not found", like a task."""
    run = session.get(AgentRun, run_id) if 1 <= run_id <= MAX_ID else None
    if run is None or run.owner_id != user.id:
        raise RunNotFound(run_id)
    return run


RunDep = Annotated[AgentRun, Depends(run_of)]


def public(run: AgentRun, session: Session) -> RunPublic:
    attempts = session.exec(
        select(WebhookAttempt)
        .where(WebhookAttempt.run_id == run.id)
        .order_by(col(WebhookAttempt.id))
    ).all()
    progress = None
    if run.progress_percent is not None:
        progress = Progress(percent=run.progress_percent, message=run.progress_message or "")
    return RunPublic.model_validate(
        {
            **run.model_dump(),
            "progress": progress,
            "webhook_attempts": [
                WebhookAttemptPublic.model_validate(a.model_dump()) for a in attempts
            ],
        }
    )


@router.post(
    "",
    status_code=202,
    responses=responses(*BODY_ERRORS, ConversationNotFound, WebhookRefused),
)
async def create_run(
    data: RunCreate,
    response: Response,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    queue: RunQueueDep,
) -> RunAccepted:
    """Queue a message for the agents to work on in the background; 202 at once.

    Follow it with `status_url` (or `GET /runs/{id}/result?wait=30`) and `events_url`.
    """
    assert user.id is not None
    if data.session_id is not None:
        ConversationStore(session, owner_id=user.id).get(data.session_id)  # 404 if not yours
    if data.webhook_url is not None:
        if settings.webhook_secret is None:
            raise WebhookRefused("Webhooks are off here: the operator has not set WEBHOOK_SECRET")
        try:
            await run_in_threadpool(
                resolve_webhook, data.webhook_url, settings.webhook_allow_private
            )
        except UnsafeWebhook as refused:
            raise WebhookRefused(str(refused)) from None
    run = await run_in_threadpool(queue.enqueue, user.id, data)
    status_url = f"/api/v1/runs/{run.id}"
    response.headers["Location"] = status_url
    assert run.id is not None
    return RunAccepted(
        id=run.id, status=run.status, status_url=status_url, events_url=f"{status_url}/events"
    )


@router.get("")
def list_runs(
    user: CurrentUser,
    session: SessionDep,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[RunPublic]:
    """Your runs, the newest first, a page at a time; optionally of one status."""
    query = select(AgentRun).where(AgentRun.owner_id == user.id)
    if status is not None:
        query = query.where(AgentRun.status == status)
    runs = session.exec(query.order_by(col(AgentRun.id).desc()).offset(offset).limit(limit)).all()
    return [public(run, session) for run in runs]


@router.get("/{run_id}", responses=responses(RunNotFound))
def read_run(run: RunDep, session: SessionDep) -> RunPublic:
    """A run's status, progress, result (once it succeeded) and webhook attempts."""
    return public(run, session)


@router.get(
    "/{run_id}/result",
    responses={
        **responses(RunNotFound),
        202: {"model": RunPublic, "description": "Not final yet: the run's status"},
    },
)
async def wait_for_result(
    run: RunDep,
    response: Response,
    session: SessionDep,
    queue: RunQueueDep,
    wait: Annotated[float, Query(ge=0, le=60, description="Seconds to wait for the end")] = 0,
) -> RunPublic:
    """The run once it is final (200); if it is not within `wait` seconds, its status (202)."""
    assert run.id is not None
    run_id = run.id
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    with queue.notifier.listening(run_channel(run_id)) as signal:
        while run.status not in FINAL_STATUSES and loop.time() < deadline:
            with suppress(TimeoutError):
                await asyncio.wait_for(signal.wait(), deadline - loop.time())
            run = await run_in_threadpool(reload, session, run_id)
    if run.status not in FINAL_STATUSES:
        response.status_code = 202
    return await run_in_threadpool(public, run, session)


def reload(session: Session, run_id: int) -> AgentRun:
    session.expire_all()
    run = session.get(AgentRun, run_id)
    assert run is not None
    return run


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses=responses(RunNotFound, NotAuthenticated, TooManyRequests, streaming=True),
)
async def stream_run_events(
    run: RunDep,
    queue: RunQueueDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The run's events as Server-Sent Events, from the first (or after `Last-Event-ID`),
    then live: `agent`, `tool_call`, `tool_output`, `delta`, `progress`, `done` or `error`,
    and `status`; the stream ends after the event that carries the final status."""
    assert run.id is not None
    run_id = run.id
    seen = parse_event_id(last_event_id) or 0
    with queue.notifier.listening(run_channel(run_id)) as signal:
        while True:
            events = await run_in_threadpool(events_after, queue, run_id, seen)
            for event in events:
                yield ServerSentEvent(event=event.event, id=str(event.id), data=event.data)
                seen = event.id  # type: ignore[assignment]
                if event.event == "status" and event.data.get("status") in FINAL_STATUSES:
                    return
            if not events:
                await signal.wait()


def events_after(queue: RunQueue, run_id: int, last_id: int) -> list[AgentRunEvent]:
    with Session(queue.engine) as session:
        query = (
            select(AgentRunEvent)
            .where(AgentRunEvent.run_id == run_id, col(AgentRunEvent.id) > last_id)
            .order_by(col(AgentRunEvent.id))
            .limit(500)
        )
        return list(session.exec(query).all())


@router.post("/{run_id}/cancel", status_code=202, responses=responses(RunNotFound))
async def cancel_run(run: RunDep, session: SessionDep, queue: RunQueueDep) -> RunPublic:
    """Cancel a run: a queued one at once, a running one at its next step (202 either way;
    the run ends `cancelled` unless it finished first)."""
    cancelled = await run_in_threadpool(queue.request_cancel, run)
    return await run_in_threadpool(public, cancelled, session)
