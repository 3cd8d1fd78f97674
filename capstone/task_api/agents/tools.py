"""The agents' function tools: the task service's own functions, for the caller's tasks only."""

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from agents import Agent, RunContextWrapper, function_tool
from pydantic import ValidationError
from sqlalchemy import Engine
from sqlmodel import Session

from task_api.errors import AppError
from task_api.events import TaskEventBroker
from task_api.models import Task, TaskCreate, TaskPriority, TaskPublic, TaskStatus, TaskUpdate
from task_api.repository import TaskRepository
from task_api.runs.errors import StopRun
from task_api.runs.queue import Claim
from task_api.services import TaskService

logger = logging.getLogger(__name__)


@dataclass
class TaskContext:
    """What the tools work with, and the model never sees or chooses: whose tasks, and where."""

    owner_id: int
    engine: Engine
    events: TaskEventBroker
    run: Claim | None = None  # set when the turn is a background run: the worker's claim


@contextmanager
def tasks_of(ctx: RunContextWrapper[TaskContext], changes: bool = True) -> Iterator[TaskService]:
    """The caller's tasks, on a database session of the tool call's own.

    The SDK may run several tools at once, each in a worker thread, and a run may wait
    seconds for the model between calls: no session is shared, none is held while waiting.
    In a background run, the run's fence comes first, in the same transaction as the change.
    """
    context = ctx.context
    with Session(context.engine, expire_on_commit=False) as session:
        if context.run is not None:
            context.run.fence(session, changes_tasks=changes)
        yield TaskService(TaskRepository(session), context.owner_id, context.events)


def answer(result: Task | list[Task] | dict[str, Any]) -> str:
    """A tool's answer to the model, in JSON."""
    if isinstance(result, list):
        return json.dumps([public(task) for task in result])
    return json.dumps(public(result) if isinstance(result, Task) else result)


def public(task: Task) -> dict[str, Any]:
    return TaskPublic.model_validate(task).model_dump(
        mode="json", exclude={"created_at", "updated_at"}
    )


def tool_failed(ctx: RunContextWrapper[Any], error: Exception) -> str:
    """What the model hears when a tool fails.

    A broken rule ("Task 9 not found") is an answer it can pass on to the user. Anything
    else is logged here, and the model hears only that the tool failed.
    """
    if isinstance(error, AppError):
        return json.dumps({"error": error.detail})
    if isinstance(error, ValidationError):
        return json.dumps({"error": error.errors(include_url=False)[0]["msg"]})
    if isinstance(error, StopRun):  # the worker notices too, and stops the run
        return json.dumps({"error": "The run is stopping"})
    logger.error("a tool failed", exc_info=error)
    return json.dumps({"error": "The tool failed"})


def tool_error(output: str) -> str | None:
    """What went wrong, if a tool's answer is the one `tool_failed` gives; None if it worked."""
    try:
        answer = json.loads(output)
    except ValueError:
        return None
    return str(answer["error"]) if isinstance(answer, dict) and "error" in answer else None


task_tool = function_tool(failure_error_function=tool_failed)


@task_tool
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
    with tasks_of(ctx) as tasks:
        return answer(tasks.create_task(TaskCreate.model_validate(data)))


@task_tool
def list_tasks(
    ctx: RunContextWrapper[TaskContext],
    status: TaskStatus | None = None,
    priority: TaskPriority | None = None,
) -> str:
    """List the user's tasks, optionally only those of one status or one priority."""
    with tasks_of(ctx, changes=False) as tasks:
        return answer(tasks.list_tasks(status=status, priority=priority, limit=100))


@task_tool
def get_task(ctx: RunContextWrapper[TaskContext], task_id: int) -> str:
    """Read one of the user's tasks by its id."""
    with tasks_of(ctx, changes=False) as tasks:
        return answer(tasks.get_task(task_id))


@task_tool
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
    with tasks_of(ctx) as tasks:
        return answer(tasks.update_task(task_id, TaskUpdate(**changes)))


@task_tool
def complete_task(ctx: RunContextWrapper[TaskContext], task_id: int) -> str:
    """Mark one of the user's tasks as completed."""
    with tasks_of(ctx) as tasks:
        return answer(tasks.update_task(task_id, TaskUpdate(status=TaskStatus.COMPLETED)))


@task_tool
def delete_task(ctx: RunContextWrapper[TaskContext], task_id: int) -> str:
    """Delete one of the user's tasks for good."""
    with tasks_of(ctx) as tasks:
        tasks.delete_task(task_id)
    return answer({"deleted": task_id})


def in_a_background_run(ctx: RunContextWrapper[TaskContext], agent: Agent[Any]) -> bool:
    return ctx.context.run is not None


# Offered to the model only in a background run, where someone follows the run's progress.
@function_tool(failure_error_function=tool_failed, is_enabled=in_a_background_run)
def report_progress(ctx: RunContextWrapper[TaskContext], percent: int, message: str) -> str:
    """Tell the user how far a long piece of work has come.

    Args:
        percent: How much of the work is done, from 0 to 100.
        message: What was done last, in a few words.
    """
    assert ctx.context.run is not None  # in_a_background_run
    ctx.context.run.report_progress(max(0, min(100, percent)), message[:200])
    return answer({"reported": percent})
