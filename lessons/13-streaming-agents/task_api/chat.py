from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from agents import RunResult, ToolCallItem, ToolCallOutputItem
from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlmodel import Session

from task_api.agent import (
    TaskContext,
    build_agent,
    parse_arguments,
    run_agent,
    stream_agent_run,
)
from task_api.deps import AgentModelDep, CurrentUser, EventBrokerDep, SessionDep, SettingsDep
from task_api.errors import TaskError
from task_api.memory import ConversationStore
from task_api.models import (
    SESSION_ID,
    AgentSessionPublic,
    ChatReply,
    ChatRequest,
    ChatStreamRequest,
    ChatUsage,
    ErrorMessage,
    ToolCall,
    as_json_errors,
)
from task_api.rate_limit import TOO_MANY_REQUESTS, limit_api_calls

UNAUTHORIZED_OR_LIMITED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "Missing or invalid token"},
    **TOO_MANY_REQUESTS,
}
MODEL_FAILED: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorMessage, "description": "The model or its provider failed"},
    504: {"model": ErrorMessage, "description": "The model took longer than allowed"},
}
NO_SUCH_CONVERSATION: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorMessage, "description": "No such conversation"}
}
router = APIRouter(
    prefix="/agent",
    tags=["agent"],
    dependencies=[Depends(limit_api_calls)],
    responses=UNAUTHORIZED_OR_LIMITED,
)


@router.post("/chat", responses=MODEL_FAILED)
async def chat(
    data: ChatRequest,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    model: AgentModelDep,
    broker: EventBrokerDep,
) -> ChatReply:
    """Ask the TaskManager agent to do something with your tasks, in plain words.

    The agent works through tools that call the same service as the /tasks routes, on
    your tasks only. Each tool call is saved whole or not at all; if the run fails, the
    tool calls that finished before the failure stay done.
    """
    assert user.id is not None
    # The tools open sessions of their own on the request's database: see run_tool.
    context = TaskContext(owner_id=user.id, database=session.get_bind(), events=broker)
    # A failed run raises AgentRunFailed, which main.py answers as it answers every TaskError.
    result = await run_agent(build_agent(model), data.message, context, settings)
    usage = result.context_wrapper.usage
    return ChatReply(
        reply=str(result.final_output),
        tool_calls=tool_calls_of(result),
        usage=ChatUsage(
            requests=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        ),
        model=settings.agent_model,
    )


def tool_calls_of(result: RunResult) -> list[ToolCall]:
    """The function calls of the run, each with its output, in the order they were made."""
    calls: dict[str, ToolCall] = {}
    for item in result.new_items:
        if (
            isinstance(item, ToolCallItem)
            and getattr(item.raw_item, "type", "") == "function_call"
        ):
            raw: Any = item.raw_item
            calls[raw.call_id] = ToolCall(
                name=raw.name, arguments=parse_arguments(raw.arguments), output=""
            )
        elif isinstance(item, ToolCallOutputItem):
            call_id = item.raw_item["call_id"] if isinstance(item.raw_item, dict) else ""
            if call_id in calls:
                calls[call_id].output = str(item.output)
    return list(calls.values())


@dataclass
class ChatTurn:
    """A streamed chat, checked and loaded before the stream starts."""

    message: str
    session_id: str | None
    history: list[dict[str, Any]]
    context: TaskContext


def start_chat_turn(
    data: ChatStreamRequest, user: CurrentUser, session: SessionDep, broker: EventBrokerDep
) -> ChatTurn:
    """Load the conversation before the response starts, so that a bad id is a plain 404.

    The stream itself never uses this request's session: the tools, and the saving of the
    finished turn, each open one of their own, so a long stream holds no connection.
    """
    assert user.id is not None
    history = ConversationStore(session, owner_id=user.id).history(data.session_id)
    context = TaskContext(owner_id=user.id, database=session.get_bind(), events=broker)
    return ChatTurn(data.message, data.session_id, history, context)


def save_turn(turn: ChatTurn, items: list[Any]) -> str:
    """Keep a finished turn in the conversation (a new one if needed); the conversation's id."""
    with Session(turn.context.database) as session:
        conversations = ConversationStore(session, owner_id=turn.context.owner_id)
        return conversations.save_turn(turn.session_id, items)


@router.post(
    "/chat/stream",
    response_class=EventSourceResponse,
    # Before the stream starts, its errors are plain JSON; a failed run is an `error` event.
    responses=as_json_errors(UNAUTHORIZED_OR_LIMITED | NO_SUCH_CONVERSATION),
)
async def chat_stream(
    turn: Annotated[ChatTurn, Depends(start_chat_turn)],
    settings: SettingsDep,
    model: AgentModelDep,
) -> AsyncIterator[ServerSentEvent]:
    """The agent's run as Server-Sent Events: `agent`, `tool_call`, `tool_output`, `delta`,
    then `done` (with the `session_id` to continue the conversation) or `error`.

    The conversation keeps only complete turns: a run that fails, or whose client goes
    away (which cancels it), leaves no trace in it.
    """
    user_message: dict[str, Any] = {"role": "user", "content": turn.message}
    agent = build_agent(model)
    events = stream_agent_run(agent, [*turn.history, user_message], turn.context, settings)
    try:
        async for event, data in events:
            if event == "done":
                # The turn is complete: keep it, then say so.
                new_items = data.pop("input")[len(turn.history) :]
                data["session_id"] = await run_in_threadpool(save_turn, turn, new_items)
            yield ServerSentEvent(event=event, data=data)
    except TaskError as error:  # the run failed, or the conversation was deleted meanwhile
        yield ServerSentEvent(
            event="error", data={"detail": error.detail, "status": error.status_code}
        )


@router.get("/sessions/{session_id}", responses=NO_SUCH_CONVERSATION)
def read_conversation(
    session_id: Annotated[str, Path(pattern=SESSION_ID)], user: CurrentUser, session: SessionDep
) -> AgentSessionPublic:
    """What was said in one of your conversations with the agent."""
    assert user.id is not None
    conversations = ConversationStore(session, owner_id=user.id)
    conversation = conversations.get(session_id)
    return AgentSessionPublic(
        session_id=conversation.id,
        messages=conversations.messages(session_id),
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


@router.delete("/sessions/{session_id}", status_code=204, responses=NO_SUCH_CONVERSATION)
def delete_conversation(
    session_id: Annotated[str, Path(pattern=SESSION_ID)], user: CurrentUser, session: SessionDep
) -> None:
    """Forget one of your conversations with the agent."""
    assert user.id is not None
    ConversationStore(session, owner_id=user.id).delete(session_id)
