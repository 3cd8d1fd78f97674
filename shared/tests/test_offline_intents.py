"""The offline model's pure parts: everyday words -> intents, arguments fitted to schemas."""

from datetime import date
from typing import Any

import pytest
from openai.types.responses import ResponseFunctionToolCall

from course_shared.offline_model import (
    Intent,
    Offer,
    Reply,
    ToolCall,
    ToolResult,
    decide,
    fit_arguments,
    parse_due_date,
    parse_output,
    parse_request,
    plan_steps,
    read_turn,
    text_pieces,
)

TODAY = date(2026, 11, 20)  # a Friday


def _create(title: str, **fields: Any) -> Intent:
    return Intent("create", title=title, **fields)


PHRASINGS = [
    # adding
    ("add a task to buy milk due friday", _create("Buy milk", due_date=date(2026, 11, 27))),
    ("Add buy milk", _create("Buy milk")),
    ("remind me to call Mom tomorrow", _create("Call Mom", due_date=date(2026, 11, 21))),
    (
        "remember to water the plants in 3 days",
        _create("Water the plants", due_date=date(2026, 11, 23)),
    ),
    (
        "I need to renew my passport next monday",
        _create("Renew my passport", due_date=date(2026, 11, 23)),
    ),
    ("don't forget to feed the cat", _create("Feed the cat")),
    ("new task: buy eggs", _create("Buy eggs")),
    ("add buy milk to my list", _create("Buy milk")),
    ("add 'Buy milk' urgent", _create("Buy milk", priority="high")),
    (
        "create a high priority task: file taxes by April 15",
        _create("File taxes", priority="high", due_date=date(2027, 4, 15)),
    ),
    (
        "add a low priority task to clean the garage on 2026-12-01",
        _create("Clean the garage", priority="low", due_date=date(2026, 12, 1)),
    ),
    (
        "Hi, can you add an important task to send the report by end of the week?",
        _create("Send the report", priority="high", due_date=TODAY),
    ),
    (
        "add a task to pay rent, priority: low, due sat",
        _create("Pay rent", priority="low", due_date=date(2026, 11, 21)),
    ),
    ("add task pay rent on December 3", _create("Pay rent", due_date=date(2026, 12, 3))),
    (
        'Add "Call the bank" due in 2 weeks',
        _create("Call the bank", due_date=date(2026, 12, 4)),
    ),
    (
        "please add a task to book dentist today with description: ask about the crown",
        _create("Book dentist", description="ask about the crown", due_date=TODAY),
    ),
    ("add a task", Intent("create")),
    # reading the list
    ("what is still pending?", Intent("list", status="pending")),
    ("show my tasks", Intent("list")),
    ("list everything", Intent("list")),
    ("what have I finished?", Intent("list", status="completed")),
    ("which tasks are done", Intent("list", status="completed")),
    ("what's in progress", Intent("list", status="in_progress")),
    ("show high priority tasks", Intent("list", priority="high")),
    ("what is urgent", Intent("list", priority="high")),
    ("what's left to do", Intent("list", only="open")),
    ("what is not done yet", Intent("list", only="open")),
    ("anything overdue?", Intent("list", only="overdue")),
    ("what is due today", Intent("list", only="due today")),
    ("give me a summary", Intent("summary")),
    ("how am I doing?", Intent("summary")),
    ("progress report", Intent("summary")),
    ("show task 3", Intent("show", task_id=3)),
    ("what is task 2?", Intent("show", task_id=2)),
    ("task #4", Intent("show", task_id=4)),
    # changing one task
    ("mark task 3 done", Intent("complete", task_id=3)),
    ("Mark task 5 as finished.", Intent("complete", task_id=5)),
    ("complete task 3", Intent("complete", task_id=3)),
    ("I finished task 3", Intent("complete", task_id=3)),
    ("task 3 is done", Intent("complete", task_id=3)),
    ("mark the milk task as done", Intent("complete", task_words=("milk",))),
    ("start task 2", Intent("update", task_id=2, changes={"status": "in_progress"})),
    ("mark task 2 in progress", Intent("update", task_id=2, changes={"status": "in_progress"})),
    ("I'm working on task 2", Intent("update", task_id=2, changes={"status": "in_progress"})),
    ("reopen task 3", Intent("update", task_id=3, changes={"status": "pending"})),
    (
        "rename task 3 to Buy oat milk",
        Intent("update", task_id=3, changes={"title": "Buy oat milk"}),
    ),
    (
        'change the title of task 3 to "Call grandma"',
        Intent("update", task_id=3, changes={"title": "Call grandma"}),
    ),
    (
        "change the priority of task 3 to high",
        Intent("update", task_id=3, changes={"priority": "high"}),
    ),
    ("make task 3 urgent", Intent("update", task_id=3, changes={"priority": "high"})),
    ("set task 3 to low priority", Intent("update", task_id=3, changes={"priority": "low"})),
    ("lower the priority of task 3", Intent("update", task_id=3, changes={"priority": "low"})),
    ("move task 3 to friday", Intent("update", task_id=3, changes={"due_date": "2026-11-27"})),
    ("task 3 is due tomorrow", Intent("update", task_id=3, changes={"due_date": "2026-11-21"})),
    ("delete task 3", Intent("delete", task_id=3)),
    ("remove #3", Intent("delete", task_id=3)),
    ("delete the milk task", Intent("delete", task_words=("milk",))),
    ("remove the task called Buy milk", Intent("delete", task_words=("buy", "milk"))),
    ("get rid of the dentist task", Intent("delete", task_words=("dentist",))),
    # planning
    ("plan my week", Intent("plan", goal="week")),
    ("can you plan next week?", Intent("plan", goal="week")),
    ("help me plan a birthday party", Intent("plan", goal="Birthday party")),
    ("make a plan to learn Spanish", Intent("plan", goal="Learn Spanish")),
    ("break down the website launch into tasks", Intent("plan", goal="Website launch")),
    # talk
    ("hello", Intent("greet")),
    ("what can you do?", Intent("greet")),
    ("thanks!", Intent("greet")),
    ("what's the weather like?", Intent("unknown")),
    ("delete all tasks", Intent("unknown")),
    ("", Intent("unknown")),
]


@pytest.mark.parametrize(("text", "expected"), PHRASINGS, ids=[p[0] or "empty" for p in PHRASINGS])
def test_parse_request(text: str, expected: Intent) -> None:
    assert parse_request(text, TODAY) == expected


DUE_DATES = [
    ("today", TODAY),
    ("tonight", TODAY),
    ("tomorrow", date(2026, 11, 21)),
    ("the day after tomorrow", date(2026, 11, 22)),
    ("friday", date(2026, 11, 27)),  # today is Friday: the next one
    ("next monday", date(2026, 11, 23)),
    ("on Wed", date(2026, 11, 25)),
    ("in 3 days", date(2026, 11, 23)),
    ("in a week", date(2026, 11, 27)),
    ("next week", date(2026, 11, 27)),
    ("on 2026-12-01", date(2026, 12, 1)),
    ("on December 3", date(2026, 12, 3)),
    ("by Dec 3rd", date(2026, 12, 3)),
    ("3 December", date(2026, 12, 3)),
    ("January 5", date(2027, 1, 5)),  # already past this year: next year
    ("this weekend", date(2026, 11, 21)),
]


@pytest.mark.parametrize(("words", "expected"), DUE_DATES)
def test_parse_due_date(words: str, expected: date) -> None:
    found, rest = parse_due_date(f"call mom {words}", TODAY)
    assert (found, rest) == (expected, "call mom")


@pytest.mark.parametrize("words", ["on Feb 30", "in 999999999 days", "in 99999999999 weeks"])
def test_dates_that_do_not_exist_are_not_dates(words: str) -> None:
    assert parse_due_date(f"go to Paris {words}", TODAY) == (None, f"go to Paris {words}")


def test_plan_steps_are_a_fixed_template_from_the_goal() -> None:
    steps = plan_steps("Birthday party", TODAY)

    assert [s.title for s in steps] == [
        "Birthday party: decide what done looks like",
        "Birthday party: list the steps",
        "Birthday party: do the first step",
        "Birthday party: review progress",
    ]
    assert [s.due_date for s in steps] == [
        TODAY,
        date(2026, 11, 21),
        date(2026, 11, 23),
        date(2026, 11, 27),
    ]


STRICT_CREATE = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "description": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "priority": {"default": "medium", "enum": ["low", "medium", "high"], "type": "string"},
        "due_date": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["title", "description", "priority", "due_date"],
    "additionalProperties": False,
}


def test_fit_arguments_fills_a_strict_schema_like_a_model_would() -> None:
    fitted = fit_arguments({"title": "Buy milk", "colour": "blue"}, STRICT_CREATE)

    assert fitted == {
        "title": "Buy milk",
        "description": None,
        "priority": "medium",
        "due_date": None,
    }


def test_fit_arguments_drops_values_the_schema_refuses() -> None:
    schema = {"properties": {"title": {"type": "string"}, "priority": {"enum": ["low", "high"]}}}

    assert fit_arguments({"title": "x", "priority": "medium"}, schema) == {"title": "x"}


def test_fit_arguments_follows_refs() -> None:
    schema = {
        "properties": {"status": {"$ref": "#/$defs/Status"}},
        "$defs": {"Status": {"enum": ["pending", "completed"], "type": "string"}},
    }

    assert fit_arguments({"status": "completed"}, schema) == {"status": "completed"}
    assert fit_arguments({"status": "archived"}, schema) == {}


def test_fit_arguments_gives_up_on_a_required_value_it_does_not_have() -> None:
    schema = {"properties": {"task_id": {"type": "integer"}}, "required": ["task_id"]}

    assert fit_arguments({"task_id": "three"}, schema) is None


@pytest.mark.parametrize(
    ("output", "error"),
    [
        ('{"id": 1, "title": "Buy milk"}', None),
        ('{"error": "Task 7 not found"}', "Task 7 not found"),
        ("{'error': 'Task 7 not found'}", "Task 7 not found"),  # a dict stringified by the SDK
        ("An error occurred while running the tool. Please try again.", "An error occurred"),
        ("[]", None),
    ],
)
def test_parse_output_finds_errors(output: str, error: str | None) -> None:
    _, found = parse_output(output)

    assert (found or "")[: len(error or "")] == (error or "")
    assert (found is None) == (error is None)


def test_read_turn_takes_sdk_objects_and_dicts_after_the_last_user_message() -> None:
    items: list[Any] = [
        {"role": "user", "content": "add milk"},
        ResponseFunctionToolCall(
            type="function_call", call_id="c1", name="create_task", arguments='{"title": "Milk"}'
        ),
        {"type": "function_call_output", "call_id": "c1", "output": '{"id": 1}'},
        {
            "role": "assistant",
            "type": "message",
            "content": [{"type": "output_text", "text": "ok"}],
        },
        {"role": "user", "content": [{"type": "input_text", "text": "delete the milk task"}]},
        ResponseFunctionToolCall(
            type="function_call", call_id="c2", name="transfer_to_clerk", arguments="{}"
        ),
        {"type": "function_call_output", "call_id": "c2", "output": '{"assistant": "Clerk"}'},
        {"type": "function_call", "call_id": "c3", "name": "list_tasks", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c3", "output": "[]"},
    ]

    turn = read_turn(items)

    assert turn.request == "delete the milk task"
    assert turn.results == (ToolResult("list_tasks", {}, [], None),)
    assert turn.handed_off == frozenset({"transfer_to_clerk"})
    assert turn.last_task_id == 1  # the task the earlier turn spoke of


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mark it done", Intent("complete", task_id=7)),
        ("Delete that one", Intent("delete", task_id=7)),
        (
            "rename it to Buy oat milk",
            Intent("update", task_id=7, changes={"title": "Buy oat milk"}),
        ),
        (
            "make this task high priority",
            Intent("update", task_id=7, changes={"priority": "high"}),
        ),
    ],
)
def test_it_is_the_task_the_conversation_last_spoke_of(text: str, expected: Intent) -> None:
    assert parse_request(text, TODAY, last_task_id=7) == expected


def test_it_means_nothing_in_a_new_conversation() -> None:
    assert parse_request("mark it done", TODAY).kind == "unknown"
    assert read_turn([{"role": "user", "content": "mark it done"}]).last_task_id is None


def test_the_last_task_spoken_of_is_the_last_single_task_a_tool_returned() -> None:
    items: list[Any] = [
        {"role": "user", "content": "add milk, then list"},
        {"type": "function_call_output", "call_id": "c1", "output": '{"id": 1, "title": "A"}'},
        {"type": "function_call_output", "call_id": "c2", "output": '[{"id": 2, "title": "B"}]'},
        {"type": "function_call_output", "call_id": "c3", "output": '[{"id": 3}, {"id": 4}]'},
        {
            "type": "function_call_output",
            "call_id": "c4",
            "output": '{"error": "Task 5 not found"}',
        },
        {"role": "user", "content": "mark it done"},
    ]

    assert read_turn(items).last_task_id == 2


TASK_TOOLS = Offer(tools={name: {} for name in ("create_task", "list_tasks", "delete_task")})


def test_decide_never_deletes_on_an_ambiguous_match() -> None:
    listed = ToolResult(
        "list_tasks", {}, [{"id": 1, "title": "Buy milk"}, {"id": 2, "title": "Oat milk"}]
    )

    action = decide(parse_request("delete the milk task", TODAY), [listed], TASK_TOOLS, TODAY)

    assert action == Reply(
        '2 tasks match "milk": #1 "Buy milk", #2 "Oat milk". Which one do you mean? '
        "I did not delete any of them."
    )


def test_decide_hands_off_when_it_lacks_the_tool() -> None:
    offer = Offer(tools={}, handoffs={"transfer_to_clerk": "Handoff to the Clerk agent."})

    action = decide(parse_request("add milk", TODAY), [], offer, TODAY)

    assert action == ToolCall("transfer_to_clerk", {})


def test_decide_does_not_hand_back_to_an_agent_it_came_from() -> None:
    offer = Offer(
        tools={},
        handoffs={"transfer_to_clerk": "Clerk"},
        handed_off=frozenset({"transfer_to_clerk"}),
    )

    action = decide(parse_request("add milk", TODAY), [], offer, TODAY)

    assert isinstance(action, Reply)
    assert action.text.startswith("I can't do that here: I have no create_task tool.")


def test_text_pieces_concatenate_back() -> None:
    text = 'Added task 4 "Buy milk"  (high priority).'

    pieces = text_pieces(text)

    assert "".join(pieces) == text
    assert pieces[:3] == ["Added ", "task ", "4 "]
