"""The TaskManager agent: the task service's own functions, offered to a model as tools."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from agents import (
    Agent,
    MaxTurnsExceeded,
    Model,
    RunConfig,
    RunContextWrapper,
    Runner,
    RunResult,
    function_tool,
)
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from openai import APIConnectionError, APIStatusError, APITimeoutError, AsyncOpenAI
from pydantic import ValidationError
from sqlalchemy import Connection, Engine
from sqlmodel import Session

from course_shared.offline_model import OfflineModel
from task_api.config import Settings
from task_api.errors import AgentRunFailed, TaskError
from task_api.events import TaskEventBroker
from task_api.models import Task, TaskCreate, TaskPriority, TaskPublic, TaskStatus, TaskUpdate
from task_api.repository import SqlTaskRepository
from task_api.services import TaskService

logger = logging.getLogger(__name__)


@dataclass
class TaskContext:
    """What the tools work with, and the model never sees or chooses: whose tasks, and where."""

    owner_id: int
    database: Engine | Connection
    events: TaskEventBroker


def run_tool(ctx: RunContextWrapper[TaskContext], action: Callable[[TaskService], Any]) -> str:
    """Call the service for the caller, and answer the model in JSON.

    A broken rule ("Task 9 not found") is an answer the model can pass on, not a failure.
    Each call has a database session of its own, closed as soon as the call is done: the
    SDK may run several tools at once, each in a worker thread, and the run may wait seconds
    for the model between calls without holding a connection.
    """
    context = ctx.context
    with Session(context.database) as session:
        tasks = TaskService(
            SqlTaskRepository(session), owner_id=context.owner_id, events=context.events
        )
        try:
            result = action(tasks)
            if isinstance(result, list):
                return json.dumps([public(task) for task in result])
            return json.dumps(public(result) if isinstance(result, Task) else result)
        except TaskError as error:
            return json.dumps({"error": error.detail})
        except ValidationError as error:
            return json.dumps({"error": error.errors(include_url=False)[0]["msg"]})


def public(task: Task) -> dict[str, Any]:
    return TaskPublic.model_validate(task).model_dump(
        mode="json", exclude={"created_at", "updated_at"}
    )


@function_tool
def create_task(
    ctx: RunContextWrapper[TaskContext],
    title: str,
    description: str | None = None,
    priority: TaskPriority = TaskPriority.MEDIUM,
    due_date: date | None = None,
) -> str:
    """Create a task for the user.

    Args:
        title: What to do, in a few words.
        description: More detail, if the user gave any.
        priority: low, medium or high.
        due_date: When it is due, as YYYY-MM-DD.
    """
    data = {"title": title, "description": description, "priority": priority, "due_date": due_date}
    return run_tool(ctx, lambda tasks: tasks.create_task(TaskCreate.model_validate(data)))


@function_tool
def list_tasks(
    ctx: RunContextWrapper[TaskContext],
    status: TaskStatus | None = None,
    priority: TaskPriority | None = None,
) -> str:
    """List the user's tasks, optionally only those of one status or one priority."""
    return run_tool(
        ctx, lambda tasks: tasks.list_tasks(status=status, priority=priority, limit=100)
    )


@function_tool
def get_task(ctx: RunContextWrapper[TaskContext], task_id: int) -> str:
    """Read one of the user's tasks by its id."""
    return run_tool(ctx, lambda tasks: tasks.get_task(task_id))


@function_tool
def update_task(
    ctx: RunContextWrapper[TaskContext],
    task_id: int,
    title: str | None = None,
    description: str | None = None,
    status: TaskStatus | None = None,
    priority: TaskPriority | None = None,
    due_date: date | None = None,
) -> str:
    """Change some fields of one of the user's tasks; fields left out stay as they are."""
    fields = {
        "title": title,
        "description": description,
        "status": status,
        "priority": priority,
        "due_date": due_date,
    }
    changes = {name: value for name, value in fields.items() if value is not None}
    return run_tool(ctx, lambda tasks: tasks.update_task(task_id, TaskUpdate(**changes)))


@function_tool
def complete_task(ctx: RunContextWrapper[TaskContext], task_id: int) -> str:
    """Mark one of the user's tasks as completed."""
    done = TaskUpdate(status=TaskStatus.COMPLETED)
    return run_tool(ctx, lambda tasks: tasks.update_task(task_id, done))


@function_tool
def delete_task(ctx: RunContextWrapper[TaskContext], task_id: int) -> str:
    """Delete one of the user's tasks for good."""

    def delete(tasks: TaskService) -> dict[str, int]:
        tasks.delete_task(task_id)
        return {"deleted": task_id}

    return run_tool(ctx, delete)


INSTRUCTIONS = """\
You are TaskManager. You keep the user's task list with your tools: create, list, read,
change, complete and delete tasks. Use the tools for every fact about tasks; never guess
an id. Say what you did in a sentence or two, and only what the tools confirmed.
Today is {today}."""


def build_agent(model: Model) -> Agent[TaskContext]:
    return Agent[TaskContext](
        name="TaskManager",
        instructions=INSTRUCTIONS.format(today=date.today().isoformat()),
        tools=[create_task, list_tasks, get_task, update_task, complete_task, delete_task],
        model=model,
    )


@asynccontextmanager
async def open_model(settings: Settings) -> AsyncIterator[Model]:
    """The model AGENT_MODEL names (offline, OpenAI's, or an OpenAI-compatible server's),
    for as long as the block runs: the app keeps one from start-up to shutdown.

    An OpenAI client holds a pool of connections to its provider. One per process lets every
    chat reuse them; closing it at the end lets the provider know the connections are done.
    """
    if settings.agent_model == "offline":
        yield OfflineModel()
        return
    api_key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if settings.openai_base_url:
        # Ollama, vLLM, LM Studio...: they speak the Chat Completions API, and need no key.
        client = AsyncOpenAI(base_url=settings.openai_base_url, api_key=api_key or "unused")
        model: Model = OpenAIChatCompletionsModel(model=settings.agent_model, openai_client=client)
    else:
        client = AsyncOpenAI(api_key=api_key)
        model = OpenAIResponsesModel(model=settings.agent_model, openai_client=client)
    async with client:
        yield model


# A run that needs more model calls than this has lost its way.
MAX_TURNS = 10


async def run_agent(
    agent: Agent[TaskContext], message: str, context: TaskContext, settings: Settings
) -> RunResult:
    """Run the agent on one message, within the time limit; AgentRunFailed says what failed."""
    try:
        async with asyncio.timeout(settings.agent_timeout_seconds):
            result = await Runner.run(
                agent,
                message,
                context=context,
                max_turns=MAX_TURNS,
                run_config=run_config(settings),
            )
        check_reply(result.final_output)
    except Exception as error:
        raise explain_failure(error, settings) from None
    return result


def check_reply(final_output: Any) -> None:
    """A run ends with the model's reply, in words; a run that ends without one failed."""
    if not isinstance(final_output, str) or not final_output.strip():
        raise AgentRunFailed(502, "The model ended its answer without a reply")


def explain_failure(error: Exception, settings: Settings) -> AgentRunFailed:
    """What a failed run means for the client, 502 or 504 with a detail; logged here, once."""
    if isinstance(error, AgentRunFailed):
        failure = error
    elif isinstance(error, TimeoutError | APITimeoutError):
        limit = f"{settings.agent_timeout_seconds:g}"
        failure = AgentRunFailed(504, f"The model did not finish within {limit} seconds")
    elif isinstance(error, MaxTurnsExceeded):
        failure = AgentRunFailed(502, f"The agent did not finish within {MAX_TURNS} turns")
    elif isinstance(error, APIStatusError):
        detail = f"The model provider answered with an error (HTTP {error.status_code})"
        failure = AgentRunFailed(502, detail)
    elif isinstance(error, APIConnectionError):
        failure = AgentRunFailed(502, "The model provider could not be reached")
    else:
        # Anything else went wrong with the model's answer: an HTML page where JSON should be,
        # a reply the SDK cannot use, an error in the model itself.
        failure = AgentRunFailed(502, "The model's answer could not be used")
    logger.warning("agent run failed: %s", failure.detail, exc_info=error)
    return failure


def parse_arguments(arguments: str) -> dict[str, Any]:
    """A tool call's arguments, as the model sent them (JSON, we hope)."""
    try:
        parsed = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"unparsed": arguments}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def run_config(settings: Settings) -> RunConfig:
    """Tracing (the run's steps, sent to OpenAI's dashboard) only when asked for, with a key."""
    key = settings.openai_api_key
    if key is None or not settings.agent_tracing:
        return RunConfig(tracing_disabled=True)
    # The key goes with the run: the SDK would look only in the environment, not in .env.
    return RunConfig(tracing={"api_key": key.get_secret_value()})
