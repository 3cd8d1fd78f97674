"""The TaskManager agents: a triage agent that hands each request to the specialist for it.

    TaskManager ──> Planner   turns a goal into several dated tasks
                ├─> Clerk     creates, changes, completes and deletes tasks
                └─> Reporter  summarises progress from the task list

The agents are built once per process (their instructions say today's date when a run
starts) and share the app's one model.
"""

from datetime import date
from typing import Any

from agents import Agent, Model, RunContextWrapper, Tool
from agents.extensions.handoff_prompt import RECOMMENDED_PROMPT_PREFIX

from task_api.tools import (
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

# Which specialist the offline model hands each kind of request to. A real model reads the
# triage instructions and the handoff descriptions; the offline model is told, not left to
# guess (the kinds are those of course_shared.offline_model.IntentKind).
OFFLINE_ROUTES = {
    "plan": "transfer_to_planner",
    "create": "transfer_to_clerk",
    "update": "transfer_to_clerk",
    "complete": "transfer_to_clerk",
    "delete": "transfer_to_clerk",
    "list": "transfer_to_reporter",
    "show": "transfer_to_reporter",
    "summary": "transfer_to_reporter",
}


def specialist(name: str, job: str, tools: list[Tool], model: Model) -> Agent[TaskContext]:
    def instructions(ctx: RunContextWrapper[TaskContext], agent: Agent[Any]) -> str:
        return SPECIALIST.format(name=name, job=job, today=date.today().isoformat())

    return Agent[TaskContext](
        name=name, handoff_description=job, instructions=instructions, tools=tools, model=model
    )


def build_agents(model: Model, background: bool = False) -> Agent[TaskContext]:
    """The triage agent, TaskManager, with the specialists it hands off to.

    `background`: for background runs, whose specialists can also report their progress.
    """
    progress: list[Tool] = [report_progress] if background else []
    planner = specialist(
        "Planner",
        "Turns a goal into a plan of several tasks, each with a due date.",
        [create_task, list_tasks, *progress],
        model,
    )
    clerk = specialist(
        "Clerk",
        "Creates, changes, completes and deletes single tasks.",
        [create_task, list_tasks, get_task, update_task, complete_task, delete_task, *progress],
        model,
    )
    reporter = specialist(
        "Reporter",
        "Answers questions about the task list and summarises progress.",
        [list_tasks, get_task, *progress],
        model,
    )
    return Agent[TaskContext](
        name="TaskManager",
        instructions=TRIAGE,
        handoffs=[planner, clerk, reporter],
        model=model,
    )
