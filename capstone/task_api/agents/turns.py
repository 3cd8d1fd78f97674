"""One turn of a conversation with the agents, as a stream of typed events.

`run_turn` runs the agents on a message and yields what happens, as it happens: the agent
answering (again after each handoff), each tool call and its output, each piece of the
reply, and at the end `Done`, `Failed`, or `ApprovalNeeded` when a tool call waits for its
owner's decision (pauses.py); a decision resumes the turn, through `run_turn` again. The
JSON route collects these events, the SSE route and the WebSocket send them as they come,
background runs store them: the SDK's events are read in one place, here.
"""

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any, ClassVar

from agents import (
    Agent,
    AgentUpdatedStreamEvent,
    MaxTurnsExceeded,
    ModelSettings,
    RawResponsesStreamEvent,
    RunConfig,
    Runner,
    RunResultStreaming,
    StreamEvent,
    ToolCallItem,
    ToolCallOutputItem,
)
from fastapi.concurrency import run_in_threadpool
from openai import APIConnectionError, APIStatusError, APITimeoutError
from sqlalchemy import Engine
from sqlmodel import Session

from task_api.agents.pauses import (
    Resumed,
    agents_version,
    end_pause,
    load_state,
    new_approval_id,
    save_pause,
)
from task_api.agents.tools import TaskContext
from task_api.config import Settings
from task_api.errors import AgentRunFailed, AgentTimedOut, AppError
from task_api.events import AgentEventType, TaskEventBroker
from task_api.memory import ConversationStore, new_conversation_id
from task_api.models import Approval, PausedTurn, utc_now
from task_api.runs.errors import StopRun
from task_api.runs.queue import Claim

logger = logging.getLogger(__name__)

# A run that needs more model calls than this has lost its way.
MAX_TURNS = 10


@dataclass(frozen=True)
class AgentChanged:
    type: ClassVar[AgentEventType] = AgentEventType.AGENT
    name: str


@dataclass(frozen=True)
class ToolCalled:
    type: ClassVar[AgentEventType] = AgentEventType.TOOL_CALL
    call_id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class ToolOutput:
    type: ClassVar[AgentEventType] = AgentEventType.TOOL_OUTPUT
    call_id: str
    name: str | None
    output: str


@dataclass(frozen=True)
class TextDelta:
    type: ClassVar[AgentEventType] = AgentEventType.DELTA
    text: str


@dataclass(frozen=True)
class Done:
    type: ClassVar[AgentEventType] = AgentEventType.DONE
    reply: str
    session_id: str  # the conversation's id, under the name clients know it by
    agent: str
    usage: dict[str, int]
    model: str
    duration_ms: int
    # The turn's new items: a background run's worker saves them with the run's final status.
    items: list[Any] = field(default_factory=list, repr=False, compare=False)


@dataclass(frozen=True)
class Failed:
    type: ClassVar[AgentEventType] = AgentEventType.ERROR
    detail: str
    status: int
    # The failure itself, for a route that answers with its status instead of an event.
    error: AppError = field(repr=False, compare=False)

    @classmethod
    def of(cls, error: AppError) -> "Failed":
        """The `error` event of a refused request or a failed run: `{"detail", "status"}`."""
        return cls(detail=error.detail, status=error.status_code, error=error)


@dataclass(frozen=True)
class ApprovalNeeded:
    type: ClassVar[AgentEventType] = AgentEventType.APPROVAL
    approvals: list[dict[str, Any]]  # each {"id", "tool", "arguments", "agent"}
    session_id: str
    agent: str
    # The paused turn and the approvals of its new calls, to store: by run_turn for a chat,
    # by the worker (with the run's status) for a background run.
    pause: PausedTurn = field(repr=False, compare=False)
    new_approvals: list[Approval] = field(repr=False, compare=False)

    def save(self, session: Session) -> None:
        save_pause(session, self.pause, self.new_approvals)


TurnEvent = AgentChanged | ToolCalled | ToolOutput | TextDelta | Done | Failed | ApprovalNeeded


def data_of(event: TurnEvent) -> dict[str, Any]:
    """The event's fields, as the `data:` of an SSE event or a WebSocket message carry them:
    all but those kept for the server (`repr=False`)."""
    return {f.name: getattr(event, f.name) for f in fields(event) if f.repr}


@dataclass
class Turn:
    """What a turn needs, checked and loaded before it starts (a bad id is a plain 404)."""

    message: str
    conversation_id: str  # a new conversation's id is chosen at the start, and kept at the end
    new_conversation: bool
    history: list[dict[str, Any]]
    context: TaskContext
    model_settings: ModelSettings = field(default_factory=ModelSettings)
    resumed: Resumed | None = None  # set when the turn goes on after a decision

    @property
    def history_length(self) -> int:
        """Where the turn's own items begin in the run's input."""
        return self.resumed.history_length if self.resumed else len(self.history)

    def save(self, session: Session, items: list[Any]) -> None:
        """Add the finished turn to its conversation (made now, if the turn starts one), in
        the session's transaction: the caller commits. ConversationNotFound if it was deleted
        meanwhile."""
        conversations = ConversationStore(session, self.context.owner_id)
        conversations.add_turn(self.conversation_id, self.message, items, self.new_conversation)
        if self.resumed is not None:
            end_pause(session, self.resumed.pause_id)


def start_turn(
    engine: Engine,
    events: TaskEventBroker,
    owner_id: int,
    message: str,
    conversation_id: str | None,
    model_settings: ModelSettings | None = None,
    run: Claim | None = None,
) -> Turn:
    """A turn of the owner's conversation, its history loaded: ConversationNotFound for an
    id that is not theirs. For the chat routes, the WebSocket and the worker alike.

    Blocking (one query, on a session of its own, closed before the turn starts): call it in
    a thread. The turn itself holds no connection while it waits for the model.
    """
    with Session(engine) as session:
        history = ConversationStore(session, owner_id).history(conversation_id)
    context = TaskContext(owner_id=owner_id, engine=engine, events=events, run=run)
    return Turn(
        message,
        conversation_id or new_conversation_id(),
        conversation_id is None,
        history,
        context,
        model_settings or ModelSettings(),
    )


async def resume_turn(
    agents: Agent[TaskContext],
    engine: Engine,
    events: TaskEventBroker,
    pause: PausedTurn,
    approvals: list[Approval],
    approval_id: str,
    run: Claim | None = None,
) -> Turn:
    """The paused turn, to go on with its decisions applied: StaleApproval if these agents
    cannot resume it. For the approvals route, the WebSocket and the worker alike."""
    context = TaskContext(owner_id=pause.owner_id, engine=engine, events=events, run=run)
    resumed = await load_state(agents, pause, approvals, context, approval_id)
    model_settings = ModelSettings(
        temperature=pause.temperature, max_tokens=pause.max_output_tokens
    )
    return Turn(
        pause.message,
        pause.conversation_id,
        pause.new_conversation,
        [],
        context,
        model_settings,
        resumed,
    )


@dataclass
class ToolNames:
    """Remembers each call's tool name, to name its output."""

    by_call: dict[str, str] = field(default_factory=dict)


def turn_event_of(event: StreamEvent, names: ToolNames) -> TurnEvent | None:
    """The turn event an SDK stream event means to a client, if any."""
    if isinstance(event, AgentUpdatedStreamEvent):
        return AgentChanged(name=event.new_agent.name)
    if isinstance(event, RawResponsesStreamEvent):
        if event.data.type == "response.output_text.delta":
            return TextDelta(text=event.data.delta)
        return None
    if event.name == "tool_called" and isinstance(event.item, ToolCallItem):
        raw: Any = event.item.raw_item
        if getattr(raw, "type", None) != "function_call":
            return None
        names.by_call[raw.call_id] = raw.name
        return ToolCalled(
            call_id=raw.call_id, name=raw.name, arguments=parse_arguments(raw.arguments)
        )
    if event.name == "tool_output" and isinstance(event.item, ToolCallOutputItem):
        raw_output: Any = event.item.raw_item
        call_id = raw_output.get("call_id", "") if isinstance(raw_output, dict) else ""
        return ToolOutput(
            call_id=call_id, name=names.by_call.get(call_id), output=str(event.item.output)
        )
    return None


async def run_turn(
    agent: Agent[TaskContext], turn: Turn, settings: Settings
) -> AsyncIterator[TurnEvent]:
    """Run the agents on the turn's message, or on from its paused state; yield its events,
    ending with Done, Failed or ApprovalNeeded.

    The conversation keeps only complete turns: a run that fails, or is cancelled (its
    client went away: the caller stops iterating), leaves no trace in it. The turn is saved
    before `Done`, and a paused turn before `ApprovalNeeded`; a background run's, by its
    worker, with the run's status.
    """
    started = time.perf_counter()
    names = ToolNames()
    if turn.resumed is not None:  # the decided calls, shown again: their outputs follow
        for approval in turn.resumed.decided:
            names.by_call[approval.call_id] = approval.tool
            yield ToolCalled(
                call_id=approval.call_id, name=approval.tool, arguments=approval.arguments
            )
    user_message: dict[str, Any] = {"role": "user", "content": turn.message}
    run = Runner.run_streamed(
        agent,
        turn.resumed.state if turn.resumed else [*turn.history, user_message],  # type: ignore[arg-type]
        context=turn.context,
        max_turns=MAX_TURNS,
        run_config=run_config(settings, turn.model_settings),
    )
    deadline = asyncio.get_running_loop().time() + settings.agent_timeout_seconds
    events = run.stream_events().__aiter__()
    paused: ApprovalNeeded | None = None
    try:
        while True:
            try:
                # The deadline holds around the wait for the run's next event only, never
                # while this generator is paused at a `yield` (its caller is then running).
                async with asyncio.timeout_at(deadline):
                    sdk_event = await anext(events)
            except StopAsyncIteration:
                break
            if (event := turn_event_of(sdk_event, names)) is not None:
                yield event
        if run.interruptions:  # a tool call waits for its owner's decision
            paused = pause_of(agent, run, turn, settings)
            if turn.context.run is None:
                await run_in_threadpool(save_paused_turn, turn, paused)
        else:
            check_reply(run.final_output)
            items = run.to_input_list()[turn.history_length :]
            if turn.context.run is None:
                await run_in_threadpool(save_turn, turn, items)
    except StopRun:  # a background run, cancelled or no longer its worker's: the worker says
        raise
    except Exception as error:  # the run failed, or its conversation was deleted meanwhile
        yield Failed.of(explain_failure(error, settings))
        return
    finally:
        if not run.is_complete:
            run.cancel()  # the client went away, or the run failed: stop calling the model
    if paused is not None:
        yield paused
        return
    usage = run.context_wrapper.usage
    yield Done(
        reply=run.final_output,
        session_id=turn.conversation_id,
        agent=run.last_agent.name,
        usage={
            "requests": usage.requests,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
        },
        model=settings.agent_model,
        duration_ms=round((time.perf_counter() - started) * 1000),
        items=items,
    )


def pause_of(
    agent: Agent[TaskContext], run: RunResultStreaming, turn: Turn, settings: Settings
) -> ApprovalNeeded:
    """The turn, paused: its RunState as JSON (naming no user: the context is the owner's,
    rebuilt when it goes on), and an approval for each call that waits."""
    waiting = turn.resumed.waiting if turn.resumed else {}
    approvals, new_approvals = [], []
    for item in run.interruptions:
        call_id = item.call_id or ""
        approval = Approval(
            id=waiting.get(call_id) or new_approval_id(),
            owner_id=turn.context.owner_id,
            call_id=call_id,
            tool=item.name or "",
            arguments=parse_arguments(item.arguments or ""),
            agent=item.agent.name,
        )
        approvals.append(
            {
                "id": approval.id,
                "tool": approval.tool,
                "arguments": approval.arguments,
                "agent": approval.agent,
            }
        )
        if call_id not in waiting:
            new_approvals.append(approval)
    pause = PausedTurn(
        id=turn.resumed.pause_id if turn.resumed else None,
        owner_id=turn.context.owner_id,
        conversation_id=turn.conversation_id,
        new_conversation=turn.new_conversation,
        message=turn.message,
        history_length=turn.history_length,
        temperature=turn.model_settings.temperature,
        max_output_tokens=turn.model_settings.max_tokens,
        run_id=turn.context.run.run_id if turn.context.run else None,
        state=run.to_state().to_json(context_serializer=lambda _: {}),
        agents_version=agents_version(agent),
        expires_at=utc_now() + timedelta(seconds=settings.approval_ttl_seconds),
    )
    return ApprovalNeeded(
        approvals=approvals,
        session_id=turn.conversation_id,
        agent=run.last_agent.name,
        pause=pause,
        new_approvals=new_approvals,
    )


def save_paused_turn(turn: Turn, paused: ApprovalNeeded) -> None:
    """Keep a paused chat turn, in a transaction of its own. Blocking."""
    with Session(turn.context.engine) as session:
        paused.save(session)
        session.commit()


def save_turn(turn: Turn, items: list[Any]) -> None:
    """Keep a finished turn in its conversation, in a transaction of its own. Blocking."""
    with Session(turn.context.engine) as session:
        turn.save(session, items)
        session.commit()


def check_reply(final_output: Any) -> None:
    """A run ends with the model's reply, in words; a run that ends without one failed."""
    if not isinstance(final_output, str) or not final_output.strip():
        raise AgentRunFailed("The model ended its answer without a reply")


def explain_failure(error: Exception, settings: Settings) -> AppError:
    """What a failed run means for the client, 502 or 504 with a detail; logged here, once."""
    failure: AppError
    if isinstance(error, AppError):
        failure = error
    elif isinstance(error, TimeoutError | APITimeoutError):
        limit = f"{settings.agent_timeout_seconds:g}"
        failure = AgentTimedOut(f"The model did not finish within {limit} seconds")
    elif isinstance(error, MaxTurnsExceeded):
        failure = AgentRunFailed(f"The agent did not finish within {MAX_TURNS} turns")
    elif isinstance(error, APIStatusError):
        failure = AgentRunFailed(
            f"The model provider answered with an error (HTTP {error.status_code})"
        )
    elif isinstance(error, APIConnectionError):
        failure = AgentRunFailed("The model provider could not be reached")
    else:
        # Anything else went wrong with the model's answer: an HTML page where JSON should be,
        # a reply the SDK cannot use, an error in the model itself.
        failure = AgentRunFailed("The model's answer could not be used")
    logger.warning("agent run failed: %s", failure.detail, exc_info=error)
    return failure


def parse_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's arguments, as the model sent them (JSON, we hope)."""
    try:
        # NaN and Infinity are not JSON, though Python's json reads them: refuse them here.
        parsed = json.loads(arguments or "{}", parse_constant=refuse_constant)
    except ValueError:
        return {"unparsed": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def run_config(settings: Settings, model_settings: ModelSettings) -> RunConfig:
    """The caller's model settings; tracing only when asked for, with a key."""
    key = settings.openai_api_key
    tracing_key = key.get_secret_value() if key is not None and settings.agent_tracing else None
    return cached_run_config(model_settings.temperature, model_settings.max_tokens, tracing_key)


@functools.lru_cache(maxsize=64)
def cached_run_config(
    temperature: float | None, max_tokens: int | None, tracing_key: str | None
) -> RunConfig:
    """A RunConfig costs a look at its type hints each time it is built: build each kind once.
    The SDK only reads it, so every run with the same settings can share one."""
    model_settings = ModelSettings(temperature=temperature, max_tokens=max_tokens)
    if tracing_key is None:
        return RunConfig(model_settings=model_settings, tracing_disabled=True)
    # The key goes with the run: the SDK would look only in the environment, not in .env.
    return RunConfig(model_settings=model_settings, tracing={"api_key": tracing_key})
