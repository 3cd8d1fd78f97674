from typing import Any

from agents import RunResult, ToolCallItem, ToolCallOutputItem
from fastapi import APIRouter, Depends

from task_api.agent import TaskContext, build_agent, parse_arguments, run_agent
from task_api.deps import AgentModelDep, CurrentUser, EventBrokerDep, SessionDep, SettingsDep
from task_api.models import ChatReply, ChatRequest, ChatUsage, ErrorMessage, ToolCall
from task_api.rate_limit import TOO_MANY_REQUESTS, limit_api_calls

UNAUTHORIZED_OR_LIMITED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "Missing or invalid token"},
    **TOO_MANY_REQUESTS,
}
MODEL_FAILED: dict[int | str, dict[str, Any]] = {
    502: {"model": ErrorMessage, "description": "The model or its provider failed"},
    504: {"model": ErrorMessage, "description": "The model took longer than allowed"},
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
