"""The TaskManager agents: a triage agent that hands each request to the specialist for it.

    TaskManager ──> Planner   turns a goal into several dated tasks
                ├─> Clerk     creates, changes, completes and deletes tasks
                └─> Reporter  summarises progress from the task list

The agents are built once per process (their instructions say today's date when a run
starts) and share the app's one model. Background runs use the same agents: there, the
specialists also see `report_progress` (the tool enables itself; see tools.py). The tools
APPROVAL_REQUIRED_TOOLS names wait for their owner's approval (pauses.py).
"""

from datetime import date
from typing import Any

from agents import Agent, Model, RunContextWrapper, Tool
from agents.extensions.handoff_prompt import RECOMMENDED_PROMPT_PREFIX

from task_api.agents.pauses import needing_approval
from task_api.agents.tools import (
    TaskContext,
    complete_task,
    create_task,
    delete_task,
    get_task,
    list_tasks,
    report_progress,
    update_task,
)

SPECIALIST = """\
You are {name}, one of the TaskManager's agents. {job} Use your tools for every fact about
tasks; never guess an id. Say what you did in a sentence or two, and only what the tools
confirmed. Today is {today}."""

TRIAGE = f"""{RECOMMENDED_PROMPT_PREFIX}
You are TaskManager. Hand each request about tasks to the agent for it: Planner for a goal
to plan, Clerk to add, change, complete or delete tasks, Reporter for questions about the
list and progress. Answer greetings and questions about what you can do yourself, briefly."""


TOOLS = [create_task, list_tasks, get_task, update_task, complete_task, delete_task]


def specialist(
    name: str, job: str, tools: list[Tool], model: Model, approval_required: frozenset[str]
) -> Agent[TaskContext]:
    def instructions(ctx: RunContextWrapper[TaskContext], agent: Agent[Any]) -> str:
        return SPECIALIST.format(name=name, job=job, today=date.today().isoformat())

    return Agent[TaskContext](
        name=name,
        handoff_description=job,
        instructions=instructions,
        tools=needing_approval(tools, approval_required),
        model=model,
    )


def build_agents(model: Model, approval_required: frozenset[str]) -> Agent[TaskContext]:
    """The triage agent, TaskManager, with the specialists it hands off to; the tools named in
    `approval_required` wait for their owner's approval. A name that is no tool's is refused:
    a misspelt APPROVAL_REQUIRED_TOOLS would otherwise let that tool run unasked."""
    unknown = approval_required - {tool.name for tool in TOOLS}
    if unknown:
        known = ", ".join(tool.name for tool in TOOLS)
        raise ValueError(
            f"APPROVAL_REQUIRED_TOOLS names no tool called {', '.join(sorted(unknown))}: "
            f"the tools are {known}"
        )
    planner = specialist(
        "Planner",
        "Turns a goal into a plan of several tasks, each with a due date.",
        [create_task, list_tasks, report_progress],
        model,
        approval_required,
    )
    clerk = specialist(
        "Clerk",
        "Creates, changes, completes and deletes single tasks.",
        [
            create_task,
            list_tasks,
            get_task,
            update_task,
            complete_task,
            delete_task,
            report_progress,
        ],
        model,
        approval_required,
    )
    reporter = specialist(
        "Reporter",
        "Answers questions about the task list and summarises progress.",
        [list_tasks, get_task, report_progress],
        model,
        approval_required,
    )
    return Agent[TaskContext](
        name="TaskManager",
        instructions=TRIAGE,
        handoffs=[planner, clerk, reporter],
        model=model,
    )
