"""Chat with the TaskManager agents: one JSON answer, or the run as Server-Sent Events; and
what the agents can do."""

import json
from collections.abc import AsyncIterator
from typing import Any

from agents import Agent, FunctionTool
from fastapi import APIRouter
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.sse import format_sse_event

from task_api.agents.pauses import team_of
from task_api.agents.tools import in_a_background_run
from task_api.agents.turns import (
    ApprovalNeeded,
    Done,
    Failed,
    ToolCalled,
    ToolOutput,
    TurnEvent,
    data_of,
    run_turn,
)
from task_api.deps import AdmittedTurnDep, AgentsDep, SettingsDep, needs
from task_api.errors import (
    AgentRunFailed,
    AgentsBusy,
    AgentTimedOut,
    ConversationNotFound,
    MissingScope,
    NotAuthenticated,
    TooManyRequests,
    responses,
)
from task_api.models import (
    AgentCapabilities,
    AgentDescription,
    ChatPaused,
    ChatReply,
    Scope,
    ToolCall,
    ToolDescription,
    Usage,
)

router = APIRouter(
    prefix="/agent",
    tags=["agent"],
    dependencies=[needs(Scope.AGENT)],
    responses=responses(NotAuthenticated, MissingScope, TooManyRequests),
)


# A turn that waits for a decision answers 202, with what waits (approvals.py decides it).
PAUSED = {202: {"model": ChatPaused, "description": "A tool call waits for your approval"}}


@router.post(
    "/chat",
    response_model=ChatReply,
    responses={
        **PAUSED,
        **responses(
            ConversationNotFound, AgentRunFailed, AgentTimedOut, AgentsBusy, reads_body=True
        ),
    },
)
async def chat(
    turn: AdmittedTurnDep, agents: AgentsDep, settings: SettingsDep
) -> ChatReply | JSONResponse:
    """Ask the TaskManager agents to do something with your tasks, in plain words.

    The agents work through tools that call the same service as the /tasks routes, on your
    tasks only. Each tool call is saved whole or not at all; if the run fails (502, 504),
    the tool calls that finished before the failure stay done. A call of a tool that needs
    your approval (delete_task) is not made: the answer is 202, with the approvals to decide.
    """
    return await reply_of(run_turn(agents, turn, settings))


async def reply_of(events: AsyncIterator[TurnEvent]) -> ChatReply | JSONResponse:
    """A turn's events as one JSON answer: the reply (200), or what waits for approval (202)."""
    calls: dict[str, ToolCall] = {}
    async for event in events:
        if isinstance(event, ToolCalled):
            calls[event.call_id] = ToolCall(name=event.name, arguments=event.arguments, output="")
        elif isinstance(event, ToolOutput) and event.call_id in calls:
            calls[event.call_id].output = event.output
        elif isinstance(event, Failed):
            raise event.error
        elif isinstance(event, ApprovalNeeded):
            paused = ChatPaused(
                session_id=event.session_id,
                agent=event.agent,
                tool_calls=[call for call in calls.values() if call.output],  # those made
                approvals=event.approvals,  # type: ignore[arg-type]
            )
            return JSONResponse(paused.model_dump(mode="json"), status_code=202)
        elif isinstance(event, Done):
            return ChatReply(
                reply=event.reply,
                session_id=event.session_id,
                agent=event.agent,
                tool_calls=list(calls.values()),
                usage=Usage(**event.usage),
                model=event.model,
                duration_ms=event.duration_ms,
            )
    raise AssertionError("a turn ends with Done, Failed or ApprovalNeeded")  # pragma: no cover


# The stream's 200 as OpenAPI 3.2 describes Server-Sent Events (as fastapi.sse documents its own).
EVENT_STREAM = {
    "description": "The run's events, as Server-Sent Events",
    "content": {
        "text/event-stream": {
            "itemSchema": {
                "type": "object",
                "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
            }
        }
    },
}
# Caches and proxies (nginx buffers by default) must pass each event on as it comes.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post(
    "/chat/stream",
    response_class=StreamingResponse,
    # Before the stream starts, its errors are plain JSON; a failed run is an `error` event.
    responses={
        200: EVENT_STREAM,
        **responses(
            NotAuthenticated,
            MissingScope,
            TooManyRequests,
            ConversationNotFound,
            AgentsBusy,
            reads_body=True,
            streaming=True,
        ),
    },
)
async def chat_stream(
    turn: AdmittedTurnDep, agents: AgentsDep, settings: SettingsDep
) -> StreamingResponse:
    """The agents' run as Server-Sent Events: `agent` (again after each handoff),
    `tool_call`, `tool_output`, `delta`, then `done` (with the `session_id` to continue
    the conversation) or `error`, or `approval` when tool calls wait for your decision.

    The conversation keeps only complete turns: a run that fails, or whose client goes
    away (which cancels it), leaves no trace in it.
    """

    return stream_of(run_turn(agents, turn, settings))


def stream_of(events: AsyncIterator[TurnEvent]) -> StreamingResponse:
    """A turn's events as Server-Sent Events."""

    async def encoded() -> AsyncIterator[bytes]:
        async for event in events:
            yield encode_event(event)

    return StreamingResponse(encoded(), media_type="text/event-stream", headers=SSE_HEADERS)


def encode_event(event: TurnEvent) -> bytes:
    """One Server-Sent Event: `event: <name>` and its data as one line of JSON, written by the
    function EventSourceResponse uses for the long-lived streams.

    A chat's events go out through a plain StreamingResponse: EventSourceResponse would run
    two tasks and two queues per stream to interleave keep-alive pings, several times the cost
    of each event, and a chat ends within AGENT_TIMEOUT_SECONDS anyway. The long-lived
    streams (/tasks/events, /runs/{id}/events) keep EventSourceResponse and its pings.
    """
    return format_sse_event(event=event.type, data_str=json.dumps(data_of(event)))


@router.get("/capabilities")
async def read_capabilities(agents: AgentsDep) -> AgentCapabilities:
    """The agents a chat may reach: the TaskManager, which every chat starts with, then the
    specialists it hands requests to; each with its tools and the JSON Schema of their
    arguments, as the model is shown them. None of them takes a user: a tool works on the
    caller's tasks only. `report_progress` is offered only in background runs; a tool that
    `needs_approval` waits for your decision before it runs."""
    return AgentCapabilities(agents=[describe_agent(agent) for agent in team_of(agents)])


def describe_agent(agent: Agent[Any]) -> AgentDescription:
    return AgentDescription(
        name=agent.name,
        handoff_description=agent.handoff_description,
        handoffs=[h.name if isinstance(h, Agent) else h.agent_name for h in agent.handoffs],
        tools=[
            ToolDescription(
                name=tool.name,
                description=tool.description,
                parameters=tool.params_json_schema,
                only_in_background_runs=tool.is_enabled is in_a_background_run,
                needs_approval=tool.needs_approval is not False,
            )
            for tool in agent.tools
            if isinstance(tool, FunctionTool)
        ],
    )
