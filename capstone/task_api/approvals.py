"""Approvals: the tool calls that wait for your yes or no before they run.

A chat turn that reaches a tool needing approval (APPROVAL_REQUIRED_TOOLS: delete_task) ends
with an `approval` event, or 202 on the JSON route; a background run waits in
`awaiting_approval`. Decide each proposed call here. A chat's turn goes on at once, streamed as
the chat stream is (one JSON answer with `Accept: application/json`); a run is queued again,
and a worker resumes it. Undecided after APPROVAL_TTL_SECONDS, a call counts as rejected.
"""

from typing import Annotated

from agents import Agent
from fastapi import APIRouter, Depends, Header, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from task_api.agents.pauses import ApprovalStore, StaleApproval, agents_version, end_paused_turn
from task_api.agents.tools import TaskContext
from task_api.agents.turns import Turn, resume_turn, run_turn
from task_api.chat import EVENT_STREAM, reply_of, stream_of
from task_api.deps import (
    AgentsDep,
    ApprovalsDep,
    EventBrokerDep,
    SettingsDep,
    needs,
    take_a_turn,
)
from task_api.errors import (
    AgentRunFailed,
    AgentsBusy,
    AgentTimedOut,
    ApprovalClosed,
    ApprovalNotFound,
    ConversationNotFound,
    MissingScope,
    NotAuthenticated,
    TooManyRequests,
    responses,
)
from task_api.events import TaskEventBroker
from task_api.models import (
    CONVERSATION_ID,
    ApprovalDecision,
    ApprovalPublic,
    ChatPaused,
    ChatReply,
    Scope,
)
from task_api.runs.models import RunAccepted, RunStatus

router = APIRouter(
    prefix="/approvals",
    tags=["approvals"],
    # A key reads approvals with `read`, decides them with `agent`: a decision runs the agents.
    dependencies=[needs(Scope.READ, Scope.AGENT)],
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests),
)
ApprovalId = Annotated[str, Path(pattern=CONVERSATION_ID)]


@router.get("")
def list_approvals(approvals: ApprovalsDep) -> list[ApprovalPublic]:
    """The tool calls that wait for your decision, the oldest first."""
    return approvals.list_pending()


@router.post(
    "/{approval_id}",
    response_model=ChatReply,
    responses={
        200: {
            "description": "A chat's turn, going on: Server-Sent Events, or with "
            "`Accept: application/json` its reply",
            "content": {**EVENT_STREAM["content"], "application/json": {}},
        },
        202: {
            "description": "A background run's approval: the run is queued again. Or, with "
            "`Accept: application/json`, a chat turn that waits for another decision",
            "model": RunAccepted | ChatPaused,
        },
        **responses(
            ApprovalNotFound,
            ApprovalClosed,
            ConversationNotFound,
            AgentRunFailed,
            AgentTimedOut,
            AgentsBusy,
            reads_body=True,
            streaming=True,
        ),
    },
    # Before the decision is recorded: a turn that could not go on would be lost.
    dependencies=[Depends(take_a_turn)],
)
async def decide_approval(
    approval_id: ApprovalId,
    decision: ApprovalDecision,
    approvals: ApprovalsDep,
    agents: AgentsDep,
    broker: EventBrokerDep,
    settings: SettingsDep,
    accept: Annotated[str | None, Header()] = None,
) -> ChatReply | JSONResponse | StreamingResponse:
    """Approve (`{"approve": true}`) or reject (`{"approve": false, "reason": "..."}`) a
    proposed tool call. Once only: a second decision is 409, as is one after it expired.

    A chat's turn goes on from where it stopped: an approved call runs, a rejected one does not
    and the agents hear your reason. Its events follow as on /agent/chat/stream (`tool_call`
    for the decided call, `tool_output`, `delta`, `done`), or with `Accept: application/json`
    as /agent/chat answers. A background run's is queued again (202); follow it on its events.
    """
    decided = await decide(approvals, approval_id, decision, agents, broker)
    if isinstance(decided, RunAccepted):
        return JSONResponse(decided.model_dump(mode="json"), status_code=202)
    events = run_turn(agents, decided, settings)
    if accept is not None and "application/json" in accept:
        return await reply_of(events)
    return stream_of(events)


async def decide(
    approvals: ApprovalStore,
    approval_id: str,
    decision: ApprovalDecision,
    agents: Agent[TaskContext],
    broker: TaskEventBroker,
) -> Turn | RunAccepted:
    """Record the decision; then a chat's turn, to go on from its state, or the background run,
    queued again. For this route and the WebSocket."""
    _approval, pause, _ = await run_in_threadpool(approvals.find, approval_id)
    stale = pause.run_id is None and pause.agents_version != agents_version(agents)
    if stale and pause.state is not None:  # found before the decision is recorded
        await run_in_threadpool(end_paused_turn, approvals.engine, pause)
        raise StaleApproval(approval_id)
    pause = await run_in_threadpool(
        approvals.decide, approval_id, decision.approve, decision.reason
    )
    if pause.run_id is not None:
        status_url = f"/api/v1/runs/{pause.run_id}"
        return RunAccepted(
            id=pause.run_id,
            status=RunStatus.QUEUED,
            status_url=status_url,
            events_url=f"{status_url}/events",
        )
    _approval, pause, turn_approvals = await run_in_threadpool(approvals.find, approval_id)
    try:
        return await resume_turn(agents, broker.engine, broker, pause, turn_approvals, approval_id)
    except StaleApproval:
        await run_in_threadpool(end_paused_turn, approvals.engine, pause)
        raise
