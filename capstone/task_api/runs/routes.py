"""Background runs: a message for the agents to work on without holding a request open.

POST /runs answers 202 at once; a worker (in this process or another) carries the run out.
Its status, its result and its events are there for any process to answer.
"""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from task_api.deps import CredentialsDep, RunDep, RunServiceDep, hold_open, needs
from task_api.errors import (
    ConversationNotFound,
    MissingScope,
    NotAuthenticated,
    RunFinished,
    RunNotFound,
    TooManyRequests,
    WebhookRefused,
    responses,
)
from task_api.events import parse_event_id
from task_api.models import Scope
from task_api.runs.models import FINAL_STATUSES, RunAccepted, RunCreate, RunPublic, RunStatus

router = APIRouter(
    prefix="/runs",
    tags=["runs"],
    # A key reads runs with `read`, starts and cancels them with `agent`.
    dependencies=[needs(Scope.READ, Scope.AGENT)],
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests),
)


@router.post(
    "",
    status_code=202,
    responses=responses(ConversationNotFound, WebhookRefused, TooManyRequests, reads_body=True),
)
def create_run(
    data: RunCreate,
    response: Response,
    runs: RunServiceDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            pattern=r"^[!-~]{1,100}$",
            description="Any word of yours for this request: sent again with a retry, it "
            "gets the run the first request made, not a second one",
        ),
    ] = None,
) -> RunAccepted:
    """Queue a message for the agents to work on in the background; 202 at once.

    Follow it with `status_url` (or `GET /runs/{id}/result?wait=30`) and `events_url`.
    """
    run = runs.create_run(data, idempotency_key)
    assert run.id is not None
    status_url = f"/api/v1/runs/{run.id}"
    response.headers["Location"] = status_url
    return RunAccepted(
        id=run.id, status=run.status, status_url=status_url, events_url=f"{status_url}/events"
    )


@router.get("")
def list_runs(
    runs: RunServiceDep,
    status: RunStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[RunPublic]:
    """Your runs, the newest first, a page at a time; optionally of one status."""
    return runs.list_runs(status, limit, offset)


@router.get("/{run_id}", responses=responses(RunNotFound))
def read_run(run_id: int, runs: RunServiceDep) -> RunPublic:
    """A run's status, progress, result (once it succeeded) and webhook attempts."""
    return runs.read_run(run_id)


@router.get(
    "/{run_id}/result",
    responses={
        **responses(RunNotFound),
        202: {"model": RunPublic, "description": "Not final yet: the run's status"},
    },
    dependencies=[Depends(hold_open)],
)
async def wait_for_result(
    run_id: int,
    response: Response,
    runs: RunServiceDep,
    wait: Annotated[float, Query(ge=0, le=60, description="Seconds to wait for the end")] = 0,
) -> RunPublic:
    """The run once it is final (200); if it is not within `wait` seconds, or as soon as it
    waits for your approval (`awaiting_approval`), its status (202)."""
    run = await runs.wait_for_result(run_id, wait)
    if run.status not in FINAL_STATUSES:
        response.status_code = 202
    return run


@router.get(
    "/{run_id}/events",
    response_class=EventSourceResponse,
    responses=responses(
        RunNotFound, NotAuthenticated, MissingScope, TooManyRequests, streaming=True
    ),
    dependencies=[Depends(hold_open)],
)
async def stream_run_events(
    run: RunDep,
    runs: RunServiceDep,
    credentials: CredentialsDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> AsyncIterator[ServerSentEvent]:
    """The run's events as Server-Sent Events, from the first (or after `Last-Event-ID`),
    then live: `agent`, `tool_call`, `tool_output`, `delta`, `progress`, `done` or `error`,
    and `status`; the stream ends after the event that carries the final status."""
    assert run.id is not None
    after = parse_event_id(last_event_id) or 0
    async for event in runs.follow_events(run.id, after, credentials.still_hold):
        yield ServerSentEvent(event=event.type, id=str(event.id), data=event.data)


@router.post("/{run_id}/cancel", status_code=202, responses=responses(RunNotFound, RunFinished))
def cancel_run(run_id: int, runs: RunServiceDep) -> RunPublic:
    """Cancel a run: a queued one is `cancelled` at once; a running one says
    `cancel_requested` and stops at its next step. A finished run answers 409."""
    return runs.cancel_run(run_id)
