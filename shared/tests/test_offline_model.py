"""The offline model driving real SDK runs over an in-memory task list."""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import pytest
from agents import (
    Agent,
    FunctionTool,
    ModelSettings,
    RunConfig,
    Runner,
    SQLiteSession,
    ToolCallItem,
    function_tool,
    set_tracing_disabled,
)
from agents.models.interface import ModelTracing

from course_shared.offline_model import OfflineModel, OfflineModelProvider

set_tracing_disabled(True)

TODAY = date(2026, 11, 20)  # a Friday
Priority = Literal["low", "medium", "high"]
Status = Literal["pending", "in_progress", "completed"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class TaskList:
    """The app's task service in miniature: tools return JSON text, errors as {"error"}."""

    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, title: str, **fields: Any) -> dict[str, Any]:
        task_id = max(self.tasks, default=0) + 1
        task = {"id": task_id, "title": title, "description": None, "status": "pending"}
        task |= {"priority": "medium", "due_date": None} | fields
        self.tasks[task_id] = task
        return task

    def tools(self) -> list[FunctionTool]:
        def found(task_id: int) -> dict[str, Any]:
            return self.tasks.get(task_id) or {"error": f"Task {task_id} not found"}

        @function_tool
        def create_task(
            title: str,
            description: str | None = None,
            priority: Priority = "medium",
            due_date: str | None = None,
        ) -> str:
            """Create a task.

            Args:
                title: What to do.
                description: Longer notes.
                priority: How important it is.
                due_date: ISO date, e.g. 2026-12-01.
            """
            task = self.add(title, description=description, priority=priority, due_date=due_date)
            return json.dumps(task)

        @function_tool
        def list_tasks(status: Status | None = None, priority: Priority | None = None) -> str:
            """List tasks, optionally only those with a status or priority."""
            return json.dumps(
                [
                    task
                    for task in self.tasks.values()
                    if status in (None, task["status"]) and priority in (None, task["priority"])
                ]
            )

        @function_tool
        def get_task(task_id: int) -> str:
            """Get one task."""
            return json.dumps(found(task_id))

        @function_tool
        def update_task(
            task_id: int,
            title: str | None = None,
            description: str | None = None,
            status: Status | None = None,
            priority: Priority | None = None,
            due_date: str | None = None,
        ) -> str:
            """Change a task; leave out what stays the same."""
            task = found(task_id)
            if "error" not in task:
                changes = dict(title=title, description=description, status=status)
                changes |= dict(priority=priority, due_date=due_date)
                task.update({k: v for k, v in changes.items() if v is not None})
            return json.dumps(task)

        @function_tool
        def complete_task(task_id: int) -> str:
            """Mark a task completed."""
            task = found(task_id)
            if "error" not in task:
                task["status"] = "completed"
            return json.dumps(task)

        @function_tool
        def delete_task(task_id: int) -> str:
            """Delete a task."""
            if task_id not in self.tasks:
                return json.dumps({"error": f"Task {task_id} not found"})
            del self.tasks[task_id]
            return json.dumps({"deleted": task_id})

        return [create_task, list_tasks, get_task, update_task, complete_task, delete_task]


@pytest.fixture
def tasks() -> TaskList:
    task_list = TaskList()
    task_list.add("Buy milk", priority="high")
    task_list.add("Write report", status="completed")
    task_list.add("Call mom", due_date="2026-11-27")
    return task_list


def clock() -> date:
    return TODAY


@pytest.fixture
def agent(tasks: TaskList) -> Agent[Any]:
    return Agent(
        name="TaskManager",
        instructions="You manage the user's tasks.",
        tools=tasks.tools(),
        model=OfflineModel(today=clock),
    )


def tool_calls(result: Any) -> list[tuple[str, dict[str, Any]]]:
    return [
        (item.raw_item.name, json.loads(item.raw_item.arguments))
        for item in result.new_items
        if isinstance(item, ToolCallItem)
    ]


@pytest.mark.anyio
async def test_add_a_task_creates_it_and_answers_from_the_tool_output(
    agent: Agent[Any], tasks: TaskList
) -> None:
    result = await Runner.run(agent, "Add a task to buy bread due friday, it's urgent")

    assert tasks.tasks[4] == {
        "id": 4,
        "title": "Buy bread",
        "description": None,
        "status": "pending",
        "priority": "high",
        "due_date": "2026-11-27",
    }
    assert result.final_output == 'Added task 4 "Buy bread" (high priority, due 2026-11-27).'
    assert tool_calls(result) == [
        (
            "create_task",
            {
                "title": "Buy bread",
                "description": None,
                "priority": "high",
                "due_date": "2026-11-27",
            },
        )
    ]


@pytest.mark.anyio
async def test_list_pending_tasks(agent: Agent[Any]) -> None:
    result = await Runner.run(agent, "What is still pending?")

    assert result.final_output == 'You have 2 pending tasks: #1 "Buy milk", #3 "Call mom".'
    assert tool_calls(result) == [("list_tasks", {"status": "pending", "priority": None})]


@pytest.mark.anyio
async def test_summary_counts_what_the_tool_returned(agent: Agent[Any]) -> None:
    result = await Runner.run(agent, "give me a quick summary")

    assert result.final_output == (
        "You have 3 tasks: 2 pending, 0 in progress, 1 completed. "
        'Open and high priority: #1 "Buy milk".'
    )


@pytest.mark.anyio
async def test_mark_a_task_done(agent: Agent[Any], tasks: TaskList) -> None:
    result = await Runner.run(agent, "mark task 3 as done")

    assert tasks.tasks[3]["status"] == "completed"
    assert result.final_output == 'Marked task 3 "Call mom" as completed.'


@pytest.mark.anyio
async def test_start_and_rename_use_update_task(agent: Agent[Any], tasks: TaskList) -> None:
    started = await Runner.run(agent, "start task 1")
    renamed = await Runner.run(agent, "rename task 1 to Buy oat milk")

    assert tasks.tasks[1].items() >= {"status": "in_progress", "title": "Buy oat milk"}.items()
    assert started.final_output == 'Marked task 1 "Buy milk" as in progress.'
    assert renamed.final_output == 'Renamed task 1 to "Buy oat milk".'


@pytest.mark.anyio
async def test_delete_by_title_words_with_one_match_deletes_it(
    agent: Agent[Any], tasks: TaskList
) -> None:
    result = await Runner.run(agent, "please delete the milk task")

    assert sorted(tasks.tasks) == [2, 3]
    assert [name for name, _ in tool_calls(result)] == ["list_tasks", "delete_task"]
    assert result.final_output == 'Deleted task 1 "Buy milk".'


@pytest.mark.anyio
async def test_delete_by_title_words_with_two_matches_deletes_nothing(
    agent: Agent[Any], tasks: TaskList
) -> None:
    tasks.add("Milk the goat")

    result = await Runner.run(agent, "delete the milk task")

    assert sorted(tasks.tasks) == [1, 2, 3, 4]
    assert [name for name, _ in tool_calls(result)] == ["list_tasks"]
    assert result.final_output == (
        '2 tasks match "milk": #1 "Buy milk", #4 "Milk the goat". Which one do you mean? '
        "I did not delete any of them."
    )


@pytest.mark.anyio
async def test_delete_by_title_words_with_no_match_says_so(
    agent: Agent[Any], tasks: TaskList
) -> None:
    result = await Runner.run(agent, "remove the dentist task")

    assert len(tasks.tasks) == 3
    assert (
        result.final_output == 'I found no task matching "dentist", so I did not delete anything.'
    )


@pytest.mark.anyio
async def test_an_error_output_is_reported_not_papered_over(agent: Agent[Any]) -> None:
    result = await Runner.run(agent, "mark task 7 done")

    assert result.final_output == "I could not complete task 7: Task 7 not found."


@pytest.mark.anyio
async def test_a_tool_that_raises_is_reported(tasks: TaskList) -> None:
    @function_tool
    def delete_task(task_id: int) -> str:
        """Delete a task."""
        raise RuntimeError("database is locked")

    agent = Agent(name="Clerk", tools=[delete_task], model=OfflineModel(today=clock))

    result = await Runner.run(agent, "delete task 2")

    assert result.final_output == (
        "I could not delete task 2: An error occurred while running the tool. Please try again."
    )


@pytest.mark.anyio
async def test_only_arguments_the_tool_has_are_sent() -> None:
    received: list[dict[str, Any]] = []

    @function_tool
    def create_task(title: str) -> str:
        """Create a task."""
        received.append({"title": title})
        return json.dumps({"id": 1, "title": title, "priority": "medium", "due_date": None})

    agent = Agent(name="Clerk", tools=[create_task], model=OfflineModel(today=clock))

    result = await Runner.run(agent, "add an urgent task to buy milk tomorrow")

    assert tool_calls(result) == [("create_task", {"title": "Buy milk"})]
    assert received == [{"title": "Buy milk"}]
    assert result.final_output == 'Added task 1 "Buy milk" (medium priority).'


@pytest.mark.anyio
async def test_an_unrecognised_request_calls_no_tool(agent: Agent[Any], tasks: TaskList) -> None:
    result = await Runner.run(agent, "what's the weather in Paris?")

    assert tool_calls(result) == []
    assert result.final_output.startswith("I can help with your tasks: add a task")
    assert len(tasks.tasks) == 3


@pytest.mark.anyio
async def test_a_session_does_not_replay_earlier_requests(
    agent: Agent[Any], tasks: TaskList
) -> None:
    session = SQLiteSession("offline-model-test")

    await Runner.run(agent, "add a task to buy bread", session=session)
    result = await Runner.run(agent, "what is pending?", session=session)

    assert [t["title"] for t in tasks.tasks.values()].count("Buy bread") == 1
    assert result.final_output == (
        'You have 3 pending tasks: #1 "Buy milk", #3 "Call mom", #4 "Buy bread".'
    )


@pytest.mark.anyio
async def test_usage_counts_one_request_per_model_call(agent: Agent[Any]) -> None:
    result = await Runner.run(agent, "delete the milk task")

    usage = result.context_wrapper.usage
    assert usage.requests == 3  # list_tasks, delete_task, the answer
    assert usage.input_tokens > usage.output_tokens > 0


@pytest.mark.anyio
async def test_the_provider_serves_the_model_for_any_name(tasks: TaskList) -> None:
    agent = Agent(name="TaskManager", tools=tasks.tools(), model="gpt-whatever")
    config = RunConfig(model_provider=OfflineModelProvider(today=clock))

    result = await Runner.run(agent, "show task 3", run_config=config)

    assert result.final_output == '#3 "Call mom" is pending, medium priority, due 2026-11-27.'


# --- streaming ---------------------------------------------------------------------------


async def stream(agent: Agent[Any], text: str) -> tuple[list[Any], str]:
    result = Runner.run_streamed(agent, text)
    events = [event async for event in result.stream_events()]
    return events, str(result.final_output)


def raw_types(events: list[Any]) -> list[str]:
    return [e.data.type for e in events if e.type == "raw_response_event"]


def deltas(events: list[Any]) -> list[str]:
    return [
        e.data.delta
        for e in events
        if e.type == "raw_response_event" and e.data.type == "response.output_text.delta"
    ]


@pytest.mark.anyio
async def test_streamed_deltas_concatenate_to_the_final_output(
    agent: Agent[Any], tasks: TaskList
) -> None:
    events, final_output = await stream(agent, "add a task to call the bank on December 3")

    assert final_output == 'Added task 4 "Call the bank" (medium priority, due 2026-12-03).'
    assert len(deltas(events)) >= 5
    assert "".join(deltas(events)) == final_output
    assert tasks.tasks[4]["title"] == "Call the bank"


@pytest.mark.anyio
async def test_streamed_events_follow_the_responses_api_order(agent: Agent[Any]) -> None:
    events, _ = await stream(agent, "show task 1")

    types = raw_types(events)
    tool_turn, answer_turn = (
        types[: types.index("response.completed") + 1],
        types[types.index("response.completed") + 1 :],
    )
    assert tool_turn == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert answer_turn[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert answer_turn[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    names = [e.name for e in events if e.type == "run_item_stream_event"]
    assert names == ["tool_called", "tool_output", "message_output_created"]


@pytest.mark.anyio
async def test_streaming_and_not_streaming_give_the_same_answer(tasks: TaskList) -> None:
    agent = Agent(name="TaskManager", tools=tasks.tools(), model=OfflineModel(today=clock))

    _, streamed = await stream(agent, "what is done?")
    plain = await Runner.run(agent, "what is done?")

    assert streamed == plain.final_output == 'You have 1 completed task: #2 "Write report".'


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record every asyncio.sleep, and still sleep."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def recording_sleep(delay: float, result: Any = None) -> Any:
        recorded.append(delay)
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    return recorded


@pytest.mark.anyio
async def test_delay_sleeps_before_each_streamed_piece(
    tasks: TaskList, sleeps: list[float]
) -> None:
    agent = Agent(name="TaskManager", tools=tasks.tools(), model=OfflineModel(delay=0.003))

    events, _ = await stream(agent, "hello")

    assert sleeps.count(0.003) == len(deltas(events)) > 3


@pytest.mark.anyio
async def test_delay_makes_get_response_take_as_long_as_the_stream(
    tasks: TaskList, sleeps: list[float]
) -> None:
    model = OfflineModel(delay=0.003)

    response = await model.get_response(
        None, "hello", ModelSettings(), [], None, [], ModelTracing.DISABLED
    )

    text = response.output[0].content[0].text  # type: ignore[union-attr]
    assert sleeps == [pytest.approx(0.003 * len(text.split()))]


# --- handoffs ----------------------------------------------------------------------------


@pytest.fixture
def triage(tasks: TaskList) -> Callable[[], Agent[Any]]:
    def build() -> Agent[Any]:
        model = OfflineModel(today=clock)
        tools = {tool.name: tool for tool in tasks.tools()}
        planner = Agent(
            name="Planner",
            handoff_description="Turns a goal into a plan of tasks.",
            tools=[tools["create_task"]],
            model=model,
        )
        clerk = Agent(
            name="Clerk",
            handoff_description="Adds, changes, completes and deletes single tasks.",
            tools=list(tools.values()),
            model=model,
        )
        return Agent(name="Triage", handoffs=[planner, clerk], model=model)

    return build


@pytest.mark.anyio
async def test_triage_hands_plan_my_week_to_the_planner(
    triage: Callable[[], Agent[Any]], tasks: TaskList
) -> None:
    result = await Runner.run(triage(), "Plan my week")

    assert result.last_agent.name == "Planner"
    assert [t["title"] for t in tasks.tasks.values()][3:] == [
        "Review open tasks",
        "Choose the top three goals for the week",
        "Block focus time in the calendar",
        "Weekly review",
    ]
    assert result.final_output == (
        'I planned your week as 4 tasks: #4 "Review open tasks" (due 2026-11-20), '
        '#5 "Choose the top three goals for the week" (due 2026-11-20), '
        '#6 "Block focus time in the calendar" (due 2026-11-21), '
        '#7 "Weekly review" (due 2026-11-27).'
    )


@pytest.mark.anyio
async def test_triage_hands_task_changes_to_the_clerk(
    triage: Callable[[], Agent[Any]], tasks: TaskList
) -> None:
    result = await Runner.run(triage(), "mark task 1 done")

    assert result.last_agent.name == "Clerk"
    assert tasks.tasks[1]["status"] == "completed"
    assert result.final_output == 'Marked task 1 "Buy milk" as completed.'


@pytest.mark.anyio
async def test_streamed_handoff_announces_the_new_agent(
    triage: Callable[[], Agent[Any]], tasks: TaskList
) -> None:
    events, final_output = await stream(triage(), "plan a birthday party")

    agents = [e.new_agent.name for e in events if e.type == "agent_updated_stream_event"]
    assert agents == ["Triage", "Planner"]
    assert len(tasks.tasks) == 7
    assert final_output.startswith('I planned "Birthday party" as 4 tasks: #4 "Birthday party:')


@pytest.mark.anyio
async def test_a_greeting_to_triage_is_answered_without_a_handoff(
    triage: Callable[[], Agent[Any]],
) -> None:
    result = await Runner.run(triage(), "hi!")

    assert result.last_agent.name == "Triage"
    assert result.final_output.startswith("Hi! I can help with your tasks:")


@pytest.mark.anyio
async def test_with_routes_the_model_hands_off_by_the_table_alone(tasks: TaskList) -> None:
    # Names and descriptions that would mislead a guess: the table decides.
    routes = {"plan": "transfer_to_beta", "complete": "transfer_to_alpha"}
    model = OfflineModel(today=clock, routes=routes)
    tools = list(tasks.tools())
    alpha = Agent(name="Alpha", handoff_description="Plans things.", tools=tools, model=model)
    beta = Agent(name="Beta", handoff_description="The clerk.", tools=tools, model=model)
    triage = Agent(name="Triage", handoffs=[alpha, beta], model=model)

    planned = await Runner.run(triage, "Plan my week")
    completed = await Runner.run(triage, "mark task 1 done")

    assert (planned.last_agent.name, completed.last_agent.name) == ("Beta", "Alpha")
    assert tasks.tasks[1]["status"] == "completed"


@pytest.mark.anyio
async def test_with_routes_a_request_without_one_is_answered_where_it_is(
    tasks: TaskList,
) -> None:
    model = OfflineModel(today=clock, routes={"plan": "transfer_to_planner"})
    clerk = Agent(name="Clerk", handoff_description="The clerk.", tools=[], model=model)
    triage = Agent(name="Triage", handoffs=[clerk], model=model)

    result = await Runner.run(triage, "mark task 1 done")

    assert result.last_agent.name == "Triage"  # no route for "complete": no guessing
    assert result.final_output.startswith("I can't do that here")
    assert tasks.tasks[1]["status"] != "completed"


@pytest.mark.anyio
async def test_a_plan_reports_its_progress_when_it_can(tasks: TaskList) -> None:
    reported: list[tuple[int, str]] = []

    @function_tool
    def report_progress(percent: int, message: str) -> str:
        """Tell the user how far the work has come."""
        reported.append((percent, message))
        return json.dumps({"reported": percent})

    agent = Agent(
        name="Planner", tools=[*tasks.tools(), report_progress], model=OfflineModel(today=clock)
    )

    result = await Runner.run(agent, "Plan my week")

    assert [percent for percent, _ in reported] == [25, 50, 75, 100]
    assert reported[0][1] == "Planned 1 of 4: Review open tasks"
    assert result.final_output.startswith("I planned your week as 4 tasks:")
