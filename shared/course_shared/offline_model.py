"""A deterministic, offline `agents.Model` for the TaskManager lessons.

It reads the latest user message, calls the task tools it is offered, and answers from
what those tools returned. Three layers, each usable on its own:

1. `parse_request(text, today)` turns everyday words into an `Intent`; "it" or "that"
   means the task the conversation last spoke of, when given one (`last_task_id`).
2. `decide(intent, results, offer, today)` picks the next `ToolCall` or `Reply`.
3. `OfflineModel` reads the SDK's input items and writes SDK output items and stream events.

    agent = Agent(name="TaskManager", tools=[...], model=OfflineModel())
"""

from __future__ import annotations

import ast
import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any, Literal, cast

from agents import (
    AgentOutputSchemaBase,
    Handoff,
    Model,
    ModelProvider,
    ModelResponse,
    ModelSettings,
    ModelTracing,
    Tool,
    TResponseInputItem,
    Usage,
)
from agents.items import TResponseOutputItem, TResponseStreamEvent
from openai.types.responses import (
    Response,
    ResponseCompletedEvent,
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseCreatedEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseInProgressEvent,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    ResponseUsage,
)
from openai.types.responses.response_prompt_param import ResponsePromptParam
from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

Priority = Literal["low", "medium", "high"]
Status = Literal["pending", "in_progress", "completed"]
IntentKind = Literal[
    "create", "plan", "list", "summary", "show", "complete", "update", "delete", "greet", "unknown"
]
ListFilter = Literal["open", "due today", "overdue"]

STATUS_LABELS: dict[str, str] = {
    "pending": "pending",
    "in_progress": "in progress",
    "completed": "completed",
}


# --- 1. Intents: everyday words -> what the user wants -----------------------------------


@dataclass(frozen=True)
class Intent:
    """What the latest user message asks for, with the arguments found in it."""

    kind: IntentKind
    task_id: int | None = None
    task_words: tuple[str, ...] = ()  # names a task by words of its title instead of its id
    title: str | None = None
    description: str | None = None
    priority: Priority | None = None  # for create, and as a list filter
    due_date: date | None = None
    status: Status | None = None  # list filter
    only: ListFilter | None = None  # list filter applied to the tool's output
    changes: Mapping[str, str] = field(default_factory=dict)  # update_task arguments
    goal: str | None = None  # for plan; "week" picks the week template


@dataclass(frozen=True)
class PlannedTask:
    """One task of a plan, before it is created."""

    title: str
    priority: Priority
    due_date: date


_FLAGS = re.IGNORECASE
_NUMBER_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_NUMBER_WORDS |= {"six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKDAY_ABBREVIATIONS = {"mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3}
_WEEKDAY_ABBREVIATIONS |= {"thurs": 3, "fri": 4, "sat": 5, "sun": 6}
_MONTHS = [
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
]  # fmt: skip
_MONTH = (
    r"(?P<month>" + "|".join(_MONTHS) + r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\.?"
)
# Words that lead into a date go with it: "due friday", "by tomorrow", "due by monday".
_PREFIX = r"(?:\b(?:due|by|on|before|until|till|for)\s+){0,2}"


def _month_number(word: str) -> int:
    return [m[:3] for m in _MONTHS].index(word[:3].lower()) + 1


def _next_weekday(today: date, weekday: int) -> date:
    """The first such weekday after today (a week ahead when today is that day)."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _month_day(today: date, month: int, day: int, year: str | None) -> date | None:
    try:
        found = date(int(year) if year else today.year, month, day)
        if not year and found < today:
            found = found.replace(year=today.year + 1)
    except ValueError:
        return None
    return found


def _in_n(m: re.Match[str], today: date) -> date | None:
    count = m["n"].lower()
    n = int(count) if count.isdigit() else _NUMBER_WORDS[count]
    try:
        return today + timedelta(days=n * (7 if m["unit"].lower().startswith("week") else 1))
    except OverflowError:  # "in 999999999 days" is past the last date Python knows
        return None


def _end_of_week(today: date) -> date:
    return today if today.weekday() == 4 else _next_weekday(today, 4)


def _weekend(today: date) -> date:
    return today if today.weekday() >= 5 else _next_weekday(today, 5)


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


_DueRule = tuple[re.Pattern[str], Callable[[re.Match[str], date], date | None]]
_DUE_RULES: list[_DueRule] = [
    (
        re.compile(_PREFIX + r"\b(?P<iso>\d{4}-\d{2}-\d{2})\b", _FLAGS),
        lambda m, today: _iso_date(m["iso"]),
    ),
    (
        re.compile(
            _PREFIX + r"\b" + _MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?\b"
            r"(?:,?\s+(?P<year>\d{4})\b)?",
            _FLAGS,
        ),
        lambda m, today: _month_day(today, _month_number(m["month"]), int(m["day"]), m["year"]),
    ),
    (
        re.compile(
            _PREFIX
            + r"\b(?:the\s+)?(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?"
            + _MONTH
            + r"(?:,?\s+(?P<year>\d{4})\b)?",
            _FLAGS,
        ),
        lambda m, today: _month_day(today, _month_number(m["month"]), int(m["day"]), m["year"]),
    ),
    (
        re.compile(_PREFIX + r"\b(?:the\s+)?day after tomorrow\b", _FLAGS),
        lambda m, today: today + timedelta(days=2),
    ),
    (
        re.compile(_PREFIX + r"\b(?:today|tonight|(?:the\s+)?end of (?:the\s+)?day)\b", _FLAGS),
        lambda m, today: today,
    ),
    (re.compile(_PREFIX + r"\btomorrow\b", _FLAGS), lambda m, today: today + timedelta(days=1)),
    (
        re.compile(
            r"(?:\bdue\s+)?\bin\s+(?P<n>\d+|" + "|".join(_NUMBER_WORDS) + r")\s+"
            r"(?P<unit>days?|weeks?)\b",
            _FLAGS,
        ),
        _in_n,
    ),
    (re.compile(_PREFIX + r"\bnext week\b", _FLAGS), lambda m, today: today + timedelta(days=7)),
    (
        re.compile(_PREFIX + r"\b(?:the\s+)?end of (?:the\s+|this\s+)?week\b", _FLAGS),
        lambda m, today: _end_of_week(today),
    ),
    (
        re.compile(_PREFIX + r"\b(?:the\s+|this\s+)?weekend\b", _FLAGS),
        lambda m, today: _weekend(today),
    ),
    (
        re.compile(
            _PREFIX + r"\b(?:(?:this|next|coming)\s+)?(?P<wd>" + "|".join(_WEEKDAYS) + r")\b",
            _FLAGS,
        ),
        lambda m, today: _next_weekday(today, _WEEKDAYS.index(m["wd"].lower())),
    ),
    (
        re.compile(
            r"\b(?:due|by|on|before|until|next|this)\s+"
            r"(?P<wd>" + "|".join(_WEEKDAY_ABBREVIATIONS) + r")\b\.?",
            _FLAGS,
        ),
        lambda m, today: _next_weekday(today, _WEEKDAY_ABBREVIATIONS[m["wd"].lower()]),
    ),
]


def parse_due_date(text: str, today: date) -> tuple[date | None, str]:
    """Find a due date in the text; return it and the text without it."""
    for pattern, resolve in _DUE_RULES:
        for m in pattern.finditer(text):
            found = resolve(m, today)
            if found is not None:
                return found, _squeeze(text[: m.start()] + " " + text[m.end() :])
    return None, text


_PRIORITY_RULES: list[tuple[re.Pattern[str], Priority]] = [
    (re.compile(r"\b(?:with\s+|at\s+)?(?:a\s+)?low[\s-]priority\b", _FLAGS), "low"),
    (re.compile(r"\bnot (?:urgent|important)\b|\bno rush\b", _FLAGS), "low"),
    (
        re.compile(r"\b(?:with\s+|at\s+)?(?:a\s+)?(?:medium|normal)[\s-]priority\b", _FLAGS),
        "medium",
    ),
    (re.compile(r"\b(?:with\s+|at\s+)?(?:a\s+)?(?:high|top)[\s-]priority\b", _FLAGS), "high"),
    (re.compile(r"\b(?:urgent(?:ly)?|important|asap|critical)\b", _FLAGS), "high"),
]
_PRIORITY_FIELD = re.compile(
    r"\bpriority\s*(?:is\s+|:\s*|=\s*)?(?P<p>high|medium|normal|low)\b", _FLAGS
)


def _priority_word(word: str) -> Priority | None:
    word = word.lower()
    if word in ("high", "urgent", "important", "top"):
        return "high"
    if word in ("medium", "normal"):
        return "medium"
    return "low" if word == "low" else None


def parse_priority(text: str) -> tuple[Priority | None, str]:
    """Find a priority in the text; return it and the text without it."""
    if m := _PRIORITY_FIELD.search(text):
        return _priority_word(m["p"]), _squeeze(text[: m.start()] + " " + text[m.end() :])
    for pattern, priority in _PRIORITY_RULES:
        if m := pattern.search(text):
            return priority, _squeeze(text[: m.start()] + " " + text[m.end() :])
    return None, text


def _squeeze(text: str) -> str:
    """Collapse spaces and the empty commas left where a phrase was cut out."""
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\s*([,;:])(?:\s*[,;:])+", r"\1", text)
    return re.sub(r"\s+([,;:.!?])", r"\1", text).strip(" ,;:")


def _unquote(text: str) -> str:
    m = re.fullmatch(r"\s*[\"'](.+)[\"']\s*", text)
    return m[1] if m else text.strip()


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


_POLITE_PREFIX = re.compile(
    r"^(?:please|pls|ok(?:ay)?|so|now|and|also|hi|hello|hey|"
    r"(?:can|could|would|will) you(?: please)?)\b[,!]?\s*",
    _FLAGS,
)


def _normalise(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"\s+", " ", text).strip().rstrip("?!. ")
    while (shorter := _POLITE_PREFIX.sub("", text)) != text:
        text = shorter
    return re.sub(r"[, ]+please$", "", text, flags=_FLAGS).strip()


# ---- create


_CREATE = re.compile(
    r"^(?:add|create|new|put|save|remember|remind me|note down|jot down|"
    r"(?:don't|do not)(?: let me)? forget|i need to|i have to|i must|i've got to|i gotta|"
    r"(?:make|set|set up) (?:me )?(?:a|an) (?:new )?(?:task|to-?do|reminder))\b:?\s*(?P<rest>.*)$",
    _FLAGS,
)
_DESCRIPTION = re.compile(
    r"[,;]?\s*(?:\bwith\s+(?:the\s+|a\s+)?(?:description|details|notes?)\s*:?\s*|"
    r"\b(?:description|details|notes?)\s*:\s*)(?P<d>.+)$",
    _FLAGS,
)
_CONTAINER = re.compile(
    r"^(?:a |an )?(?:new )?(?:task|to-?do|reminder|item)s?\b\s*"
    r"(?:called|named|titled|saying|to|that|for|about|:)?\s*",
    _FLAGS,
)
_LIST_PLACE = re.compile(r"\s*\b(?:to|on|in)\s+(?:my|the)\s+(?:task |to-?do )?list\b", _FLAGS)


def _parse_create(text: str, today: date) -> Intent | None:
    m = _CREATE.match(text)
    if not m:
        return None
    rest = m["rest"]
    description = None
    if d := _DESCRIPTION.search(rest):
        description = _unquote(d["d"])
        rest = rest[: d.start()]
    if quoted := re.search(r"\"([^\"]+)\"|'([^']+)'(?!\w)", rest):
        title = quoted[1] or quoted[2]
        rest = rest[: quoted.start()] + " " + rest[quoted.end() :]
        priority, rest = parse_priority(rest)
        due, rest = parse_due_date(rest, today)
    else:
        priority, rest = parse_priority(rest)
        due, rest = parse_due_date(rest, today)
        rest = _CONTAINER.sub("", _squeeze(_LIST_PLACE.sub("", rest)), count=1)
        rest = re.sub(r"^(?:to|that|about)\s+", "", rest, flags=_FLAGS)
        # What is left once the priority and date are cut out: "due", "it's", "and".
        title = re.sub(
            r"(?:[,\s]+\b(?:due|by|on|and|it's|it is|this is|that's|which is))+$",
            "",
            _squeeze(rest),
            flags=_FLAGS,
        )
    title = _capitalise(title.strip(" ,;:.-"))
    return Intent(
        "create", title=title or None, description=description, priority=priority, due_date=due
    )


# ---- plan


_PLAN = re.compile(
    r"^(?:help me |i need to |i want to |let's |let us )?"
    r"(?:plan(?: out)?|make a plan (?:for|to)|create a plan (?:for|to)|"
    r"(?:give me|i need|i want) a plan (?:for|to)|break down)\s+(?P<goal>.+)$",
    _FLAGS,
)
_WEEK_GOAL = re.compile(r"^(?:for\s+)?(?:my |the |this |next )?week$", _FLAGS)


def _parse_plan(text: str, today: date) -> Intent | None:
    m = _PLAN.match(text)
    if not m:
        return None
    if _WEEK_GOAL.match(m["goal"]):
        return Intent("plan", goal="week")
    goal = re.sub(r"\s+into (?:tasks|steps)$", "", m["goal"], flags=_FLAGS)
    goal = re.sub(r"^(?:for |how to |to |my |the |a |an )+", "", goal, flags=_FLAGS)
    return Intent("plan", goal=_capitalise(_unquote(goal))) if goal else None


def plan_steps(goal: str, today: date) -> list[PlannedTask]:
    """The fixed template of tasks that `plan <goal>` creates."""
    if goal == "week":
        return [
            PlannedTask("Review open tasks", "high", today),
            PlannedTask("Choose the top three goals for the week", "high", today),
            PlannedTask("Block focus time in the calendar", "medium", today + timedelta(days=1)),
            PlannedTask("Weekly review", "low", _end_of_week(today + timedelta(days=1))),
        ]
    return [
        PlannedTask(f"{goal}: decide what done looks like", "high", today),
        PlannedTask(f"{goal}: list the steps", "medium", today + timedelta(days=1)),
        PlannedTask(f"{goal}: do the first step", "medium", today + timedelta(days=3)),
        PlannedTask(f"{goal}: review progress", "low", today + timedelta(days=7)),
    ]


# ---- actions on one task


_REF_ID = re.compile(
    r"^(?:task|item|to-?do|number|no\.?)?\s*(?:number\s*|no\.?\s*)?#?\s*(?P<id>\d+)$", _FLAGS
)
_REF_NOISE = {"the", "a", "an", "my", "task", "tasks", "todo", "item", "one", "it", "that"}
_REF_NOISE |= {"this", "called", "named", "titled", "about", "please"}


def parse_task_ref(ref: str) -> tuple[int | None, tuple[str, ...]]:
    """`task 3` -> (3, ()); `the milk task` -> (None, ("milk",)); nothing usable -> (None, ())."""
    ref = ref.strip(" ,.;:!?")
    if m := _REF_ID.match(ref):
        return int(m["id"]), ()
    if re.match(r"^(?:all|every|each)\b", ref, _FLAGS):
        return None, ()  # one task at a time
    ref = re.sub(r"^the\s+", "", ref, flags=_FLAGS)
    ref = re.sub(
        r"^(?:task|to-?do|item|one)\s+(?:called|named|titled|about|for|to)\s+",
        "",
        ref,
        flags=_FLAGS,
    )
    words = re.findall(r"[a-z0-9']+", _unquote(ref).lower())
    return None, tuple(w for w in words if w not in _REF_NOISE)


_REF = r"(?P<ref>.+?)"
# In "X is done" phrasings X must name a task, or "what is done" would be a task called "what".
_NAMED_REF = r"(?P<ref>(?:task\s*#?|#)\s*\d+|the\s+.+?\s+task)"
_DONE = r"(?:done|complete|completed|finished)"
_ACTION_RULES: list[tuple[str, str]] = [
    (rf"^(?:rename|retitle)\s+{_REF}\s+(?:to|as)\s+(?P<value>.+)$", "title"),
    (
        rf"^(?:change|set|update)\s+the\s+(?:title|name)\s+of\s+{_REF}\s+to\s+(?P<value>.+)$",
        "title",
    ),
    (
        rf"^(?:change|set|update|make)\s+(?:the\s+)?priority\s+(?:of|for|on)\s+{_REF}\s+"
        r"(?:to|as)\s+(?P<value>high|medium|normal|low|urgent|important)$",
        "priority",
    ),
    (
        rf"^(?:make|mark|set|change)\s+{_REF}\s+(?:as\s+|to\s+)?"
        r"(?P<value>high|medium|normal|low)[\s-]priority$",
        "priority",
    ),
    (rf"^(?:make|mark|set)\s+{_REF}\s+(?:as\s+)?(?P<value>urgent|important)$", "priority"),
    (rf"^{_NAMED_REF}\s+is\s+(?:now\s+)?(?P<value>urgent|important)$", "priority"),
    (
        rf"^(?P<value>raise|increase|bump|lower|decrease)\s+(?:the\s+)?priority\s+"
        rf"(?:of|for|on)\s+{_REF}$",
        "priority",
    ),
    (rf"^(?:prioriti[sz]e)\s+{_REF}$", "priority"),
    (
        r"^(?:move|reschedule|postpone|push|change the due date (?:of|for)|"
        rf"set the due date (?:of|for))\s+{_REF}\s+(?:to|until|till|for)\s+(?P<value>.+)$",
        "due_date",
    ),
    (rf"^make\s+{_REF}\s+due\s+(?P<value>.+)$", "due_date"),
    (rf"^{_NAMED_REF}\s+is\s+(?:now\s+)?due\s+(?P<value>.+)$", "due_date"),
    (rf"^(?:mark|set|flag)\s+{_REF}\s+(?:as\s+)?{_DONE}$", "completed"),
    (rf"^(?:complete|finish|close|check off|tick off|cross off)\s+{_REF}$", "completed"),
    (rf"^(?:i(?:'ve|\s+have)?\s+)?(?:finished|completed|did)\s+{_REF}$", "completed"),
    (rf"^(?:i'm\s+|i am\s+)?done with\s+{_REF}$", "completed"),
    (rf"^{_NAMED_REF}\s+is\s+(?:now\s+)?{_DONE}$", "completed"),
    (
        rf"^(?:mark|set|move|put)\s+{_REF}\s+(?:as\s+|to\s+|in\s+|into\s+)?"
        r"(?:in[\s-]progress|started|doing)$",
        "in_progress",
    ),
    (rf"^(?:start|begin|start working on|work on)\s+{_REF}$", "in_progress"),
    (rf"^(?:i'm|i am)\s+(?:now\s+)?(?:working on|starting)\s+{_REF}$", "in_progress"),
    (rf"^(?:reopen|re-open|undo)\s+{_REF}$", "pending"),
    (
        rf"^(?:mark|set)\s+{_REF}\s+(?:as\s+)?"
        r"(?:pending|not done|undone|open|incomplete|to-?do)$",
        "pending",
    ),
    (rf"^(?:delete|remove|drop|cancel|trash|erase|scrap|get rid of)\s+{_REF}$", "delete"),
    (
        r"^(?:show(?: me)?|get|open|display|view|describe|look up|find|what(?:'s| is)|"
        r"tell me about|details (?:of|for|on))\s+(?P<ref>(?:task\s*#?|#)\s*\d+)$",
        "show",
    ),
    (r"^(?P<ref>(?:task\s*#?|#)\s*\d+)$", "show"),
]
_ACTIONS = [(re.compile(pattern, _FLAGS), action) for pattern, action in _ACTION_RULES]
_PRIORITY_MOVES: dict[str, Priority] = {"raise": "high", "increase": "high", "bump": "high"}
_PRIORITY_MOVES |= {"lower": "low", "decrease": "low"}


_PRONOUN_REF = re.compile(r"^(?:it|that|this)(?:\s+(?:one|task))?$", _FLAGS)


def _parse_task_action(text: str, today: date, last_task_id: int | None = None) -> Intent | None:
    for pattern, action in _ACTIONS:
        m = pattern.match(text)
        if not m:
            continue
        task_id, words = parse_task_ref(m["ref"])
        if task_id is None and not words and _PRONOUN_REF.match(m["ref"].strip(" ,.;:!?")):
            task_id = last_task_id  # "mark it done", after a turn about one task
        if task_id is None and not words:
            continue
        value = m.groupdict().get("value") or ""
        target = Intent("unknown", task_id=task_id, task_words=words)
        if action in ("delete", "show"):
            return _replace(target, kind=action)
        if action == "completed":
            return _replace(target, kind="complete")
        if action in ("in_progress", "pending"):
            return _replace(target, kind="update", changes={"status": action})
        if action == "title":
            return _replace(target, kind="update", changes={"title": _capitalise(_unquote(value))})
        if action == "priority":
            priority = _PRIORITY_MOVES.get(value.lower()) or _priority_word(value) or "high"
            return _replace(target, kind="update", changes={"priority": priority})
        due, rest = parse_due_date(value, today)
        if due is not None and not rest:
            return _replace(target, kind="update", changes={"due_date": due.isoformat()})
    return None


def _replace(intent: Intent, **changes: Any) -> Intent:
    return Intent(**{**intent.__dict__, **changes})


# ---- reading the list


_SUMMARY = re.compile(
    r"\b(?:summar(?:y|ise|ize)|report|overview|(?<!in )progress|recap|stats|statistics|"
    r"how am i doing|how's it going|status update)\b",
    _FLAGS,
)
_LIST_VERB = re.compile(
    r"\b(?:list|show|display|see|view|what|what's|which|any|anything|how many|give me|"
    r"tell me|do i have|get)\b",
    _FLAGS,
)
_LIST_NOUN = re.compile(
    r"\b(?:tasks?|to-?dos?|to do|pending|in[\s-]progress|done|completed|finished|open|left|"
    r"remaining|outstanding|due|overdue|urgent|important|high[\s-]priority|low[\s-]priority|"
    r"on my plate|everything|list)\b",
    _FLAGS,
)


def _parse_list(text: str, today: date) -> Intent | None:
    if _SUMMARY.search(text):
        return Intent("summary")
    if not (_LIST_VERB.search(text) and _LIST_NOUN.search(text)):
        return None
    status: Status | None = None
    only: ListFilter | None = None
    if re.search(r"\bnot (?:yet )?(?:done|completed|finished)\b|\bunfinished\b", text, _FLAGS):
        only = "open"
    elif re.search(r"\bin[\s-]progress\b|\bstarted\b|\bworking on\b", text, _FLAGS):
        status = "in_progress"
    elif re.search(r"\b(?:done|completed|finished|closed)\b", text, _FLAGS):
        status = "completed"
    elif re.search(r"\bpending\b", text, _FLAGS):
        status = "pending"
    elif re.search(
        r"\b(?:open|left|remaining|outstanding|incomplete|to do|on my plate)\b", text, _FLAGS
    ):
        only = "open"
    if re.search(r"\b(?:overdue|late|past due)\b", text, _FLAGS):
        only = "overdue"
    elif re.search(r"\btoday\b", text, _FLAGS):
        only = "due today"
    priority: Priority | None = None
    if re.search(r"\blow[\s-]priority\b", text, _FLAGS):
        priority = "low"
    elif re.search(r"\b(?:high[\s-]priority|urgent|important)\b", text, _FLAGS):
        priority = "high"
    return Intent("list", status=status, priority=priority, only=only)


_GREETING = re.compile(
    r"^(?:hi|hello|hey|hiya|yo|good (?:morning|afternoon|evening)|thanks|thank you|cheers)\b"
    r"|\bhelp\b|\bwhat can you do\b|\bhow does (?:this|it) work\b|\bwho are you\b",
    _FLAGS,
)


def parse_request(text: str, today: date, last_task_id: int | None = None) -> Intent:
    """Recognise one request in a user's message.

    `last_task_id` is the task the conversation last spoke of: "it" or "that" names it.
    """
    cleaned = _normalise(text)
    task_action = partial(_parse_task_action, last_task_id=last_task_id)
    for parse in (_parse_plan, _parse_create, task_action, _parse_list):
        if cleaned and (intent := parse(cleaned, today)):
            return intent
    return Intent("greet") if _GREETING.search(text.strip()) else Intent("unknown")


# --- 2. Deciding the next step from the intent and the tool outputs so far ----------------


@dataclass(frozen=True)
class ToolResult:
    """A tool call made since the user's latest message, with what it returned."""

    name: str
    arguments: Mapping[str, Any]
    output: Any  # parsed JSON when the tool returned JSON, else the text
    error: str | None = None


@dataclass(frozen=True)
class ToolCall:
    """Call a function tool or a handoff tool."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """Answer the user; the run ends."""

    text: str


Action = ToolCall | Reply


@dataclass(frozen=True)
class Offer:
    """What the current agent may call this turn."""

    tools: Mapping[str, Mapping[str, Any]]  # function tool name -> parameter schema
    handoffs: Mapping[str, str] = field(default_factory=dict)  # handoff tool -> description
    handoff_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    handed_off: frozenset[str] = frozenset()  # handoff tools already called this turn
    # intent kind -> the handoff tool for it, as the app tells the model; None: guess from
    # the handoffs' names and descriptions.
    routes: Mapping[str, str] | None = None


# Keyword groups, tried in order, matched against a handoff's tool name and description.
_PREFERRED_HANDOFF: dict[str, list[tuple[str, ...]]] = {
    "plan": [("plan",)],
    "summary": [("report", "summar")],
    "create": [("clerk",)],
    "complete": [("clerk",)],
    "update": [("clerk",)],
    "delete": [("clerk",)],
}
_FALLBACK_HANDOFF: dict[str, list[tuple[str, ...]]] = {
    "plan": [("clerk",), ("task",)],
    "summary": [("clerk",), ("task",)],
    "list": [("report", "summar"), ("clerk",), ("task",)],
    "show": [("report", "summar"), ("clerk",), ("task",)],
    "create": [("task",)],
    "complete": [("task",)],
    "update": [("task",)],
    "delete": [("task",)],
}


def _pick_handoff(groups: list[tuple[str, ...]], offer: Offer) -> ToolCall | None:
    for keywords in groups:
        for name, description in offer.handoffs.items():
            if name in offer.handed_off:
                continue  # never bounce back and forth within one turn
            arguments = fit_arguments({}, offer.handoff_schemas.get(name, {}))
            if arguments is not None and any(
                k in f"{name} {description}".lower() for k in keywords
            ):
                return ToolCall(name, arguments)
    return None


def _handoff_for(intent: Intent, offer: Offer) -> ToolCall | None:
    """The handoff the routes name for this intent, or the one its keywords suggest."""
    if offer.routes is None:
        return _pick_handoff(_PREFERRED_HANDOFF.get(intent.kind, []), offer)
    name = offer.routes.get(intent.kind)
    if name is None or name not in offer.handoffs or name in offer.handed_off:
        return None
    arguments = fit_arguments({}, offer.handoff_schemas.get(name, {}))
    return ToolCall(name, arguments) if arguments is not None else None


def _tools_needed(intent: Intent, tools: Mapping[str, Any]) -> list[str]:
    """The tools this intent calls, in order."""
    lookup = ["list_tasks"] if intent.task_id is None else []
    match intent.kind:
        case "create" | "plan":
            return ["create_task"]
        case "list" | "summary":
            return ["list_tasks"]
        case "show":
            return lookup or ["get_task"]
        case "complete":
            return [*lookup, "complete_task" if "complete_task" in tools else "update_task"]
        case "update":
            return [*lookup, "update_task"]
        case "delete":
            return [*lookup, "delete_task"]
    return []


def decide(intent: Intent, results: Sequence[ToolResult], offer: Offer, today: date) -> Action:
    """The next step: call a tool, hand off, or reply from the tool outputs."""
    if intent.kind in ("greet", "unknown"):
        return Reply(_help_text(intent, offer))
    if not results and (handoff := _handoff_for(intent, offer)):
        return handoff
    if missing := [name for name in _tools_needed(intent, offer.tools) if name not in offer.tools]:
        guess = offer.routes is None  # with routes given, the route is the only handoff
        if guess and (handoff := _pick_handoff(_FALLBACK_HANDOFF.get(intent.kind, []), offer)):
            return handoff
        return Reply(
            f"I can't do that here: I have no {missing[0]} tool. {_help_text(intent, offer)}"
        )
    step = _next_step(intent, results, offer, today)
    if isinstance(step, Reply):
        return step
    arguments = fit_arguments(step.arguments, offer.tools[step.name])
    if arguments is None:
        return Reply(
            f"I can't call {step.name} with what you gave me. {_help_text(intent, offer)}"
        )
    return ToolCall(step.name, arguments)


def _next_step(intent: Intent, results: Sequence[ToolResult], offer: Offer, today: date) -> Action:
    if results and results[-1].error is not None:
        return Reply(_failure(intent, results))
    done = {result.name: result for result in results}
    match intent.kind:
        case "create":
            if intent.title is None:
                return Reply('What should the task say? For example: "add a task to buy milk".')
            if "create_task" not in done:
                return ToolCall(
                    "create_task",
                    {
                        "title": intent.title,
                        "description": intent.description,
                        "priority": intent.priority,
                        "due_date": intent.due_date.isoformat() if intent.due_date else None,
                    },
                )
            return Reply(_added(done["create_task"].output))
        case "plan":
            return _plan_step(intent, results, today, offer)
        case "list" | "summary":
            if "list_tasks" not in done:
                return ToolCall(
                    "list_tasks", {"status": intent.status, "priority": intent.priority}
                )
            tasks = _tasks(done["list_tasks"].output)
            if intent.kind == "summary":
                return Reply(_summary(tasks, today))
            return Reply(_listing(intent, tasks, today))
    return _task_step(intent, done, offer)


def _plan_step(intent: Intent, results: Sequence[ToolResult], today: date, offer: Offer) -> Action:
    steps = plan_steps(intent.goal or "week", today)
    created = [result.output for result in results if result.name == "create_task"]
    if "report_progress" in offer.tools and results and results[-1].name == "create_task":
        # In a background run: say how far the plan has come after each task.
        title = steps[len(created) - 1].title
        return ToolCall(
            "report_progress",
            {
                "percent": round(100 * len(created) / len(steps)),
                "message": f"Planned {len(created)} of {len(steps)}: {title}",
            },
        )
    if len(created) < len(steps):  # one task per model turn, so ids come out in order
        step = steps[len(created)]
        return ToolCall(
            "create_task",
            {
                "title": step.title,
                "priority": step.priority,
                "due_date": step.due_date.isoformat(),
            },
        )
    what = "your week" if intent.goal == "week" else f'"{intent.goal}"'
    listed = ", ".join(
        _ref(task) + (f" (due {task['due_date']})" if task.get("due_date") else "")
        for task in created
        if isinstance(task, dict)
    )
    return Reply(f"I planned {what} as {len(created)} tasks: {listed}.")


def _task_step(intent: Intent, done: Mapping[str, ToolResult], offer: Offer) -> Action:
    """show / complete / update / delete, looking the task up by title words first if needed."""
    target: dict[str, Any] | None = None
    task_id = intent.task_id
    if task_id is None:
        if "list_tasks" not in done:
            return ToolCall("list_tasks", {})
        tasks = _tasks(done["list_tasks"].output)
        matches = [task for task in tasks if _title_matches(task, intent.task_words)]
        verb = {"delete": "delete", "complete": "complete", "show": "show"}.get(
            intent.kind, "change"
        )
        words = " ".join(intent.task_words)
        if not matches:
            return Reply(f'I found no task matching "{words}", so I did not {verb} anything.')
        if len(matches) > 1:
            listed = ", ".join(_ref(task) for task in matches)
            return Reply(
                f'{len(matches)} tasks match "{words}": {listed}. Which one do you mean? '
                f"I did not {verb} any of them."
            )
        target = matches[0]
        task_id = int(target["id"])
        if intent.kind == "show":
            return Reply(_describe(target))
    tool = _tools_needed(intent, offer.tools)[-1]
    if tool not in done:
        arguments: dict[str, Any] = {"task_id": task_id, **intent.changes}
        if intent.kind == "complete" and tool == "update_task":
            arguments["status"] = "completed"
        return ToolCall(tool, arguments)
    output = done[tool].output
    if intent.kind == "delete":
        title = f' "{target["title"]}"' if target else ""
        if isinstance(output, dict) and "title" in output:
            title = f' "{output["title"]}"'
        deleted = output.get("deleted", task_id) if isinstance(output, dict) else task_id
        return Reply(f"Deleted task {deleted}{title}.")
    if not isinstance(output, dict):
        return Reply(f"Done: {output}")
    if intent.kind == "show":
        return Reply(_describe(output))
    return Reply(_updated(intent, output))


def _failure(intent: Intent, results: Sequence[ToolResult]) -> str:
    failed = results[-1]
    error = (failed.error or "").rstrip(". ")
    if intent.kind == "plan":
        created = [r.output for r in results if r.name == "create_task" and r.error is None]
        title = failed.arguments.get("title", "a task")
        if created:
            listed = ", ".join(_ref(task) for task in created if isinstance(task, dict))
            return (
                f"I created {len(created)} of the planned tasks ({listed}), "
                f'but creating "{title}" failed: {error}.'
            )
        return f'I could not create the planned tasks: creating "{title}" failed: {error}.'
    task_id = failed.arguments.get("task_id", intent.task_id)
    if failed.name == "list_tasks" and intent.kind not in ("list", "summary"):
        return f"I could not look up your tasks: {error}."
    what = {
        "create": f'add "{intent.title}"',
        "list": "list your tasks",
        "summary": "summarise your tasks",
        "show": f"show task {task_id}",
        "complete": f"complete task {task_id}",
        "update": f"update task {task_id}",
        "delete": f"delete task {task_id}",
    }[intent.kind]
    return f"I could not {what}: {error}."


# ---- answers, written from tool outputs


def _tasks(output: Any) -> list[dict[str, Any]]:
    if isinstance(output, dict):
        output = output.get("tasks", output.get("items", [output]))
    return [task for task in output if isinstance(task, dict)] if isinstance(output, list) else []


def _ref(task: Mapping[str, Any]) -> str:
    return f'#{task.get("id", "?")} "{task.get("title", "")}"'


def _title_matches(task: Mapping[str, Any], words: Iterable[str]) -> bool:
    title = {w.rstrip("s") for w in re.findall(r"[a-z0-9']+", str(task.get("title", "")).lower())}
    return all(word.rstrip("s") in title for word in words)


def _status(task: Mapping[str, Any]) -> str:
    status = str(task.get("status", "pending"))
    return STATUS_LABELS.get(status, status)


def _added(task: Any) -> str:
    if not isinstance(task, dict):
        return f"Added the task: {task}"
    details = [f"{task.get('priority', 'medium')} priority"]
    if task.get("due_date"):
        details.append(f"due {task['due_date']}")
    return f'Added task {task.get("id")} "{task.get("title")}" ({", ".join(details)}).'


def _describe(task: Mapping[str, Any]) -> str:
    text = f"{_ref(task)} is {_status(task)}, {task.get('priority', 'medium')} priority"
    text += f", due {task['due_date']}." if task.get("due_date") else ", no due date."
    return text + (f" Notes: {task['description']}" if task.get("description") else "")


def _updated(intent: Intent, task: Mapping[str, Any]) -> str:
    task_id, title = task.get("id"), task.get("title")
    if "title" in intent.changes:
        return f'Renamed task {task_id} to "{title}".'
    if "priority" in intent.changes:
        return f'Task {task_id} "{title}" is now {task.get("priority")} priority.'
    if "due_date" in intent.changes:
        return f'Task {task_id} "{title}" is now due {task.get("due_date")}.'
    return f'Marked task {task_id} "{title}" as {_status(task)}.'


def _listing(intent: Intent, tasks: list[dict[str, Any]], today: date) -> str:
    if intent.status:
        tasks = [task for task in tasks if task.get("status") == intent.status]
    if intent.priority:
        tasks = [task for task in tasks if task.get("priority") == intent.priority]
    if intent.only in ("open", "overdue"):
        tasks = [task for task in tasks if task.get("status") != "completed"]
    if intent.only == "overdue":
        tasks = [t for t in tasks if t.get("due_date") and str(t["due_date"]) < today.isoformat()]
    if intent.only == "due today":
        tasks = [task for task in tasks if str(task.get("due_date")) == today.isoformat()]
    adjectives = [
        intent.status if intent.status in ("pending", "completed") else "",
        intent.only if intent.only in ("open", "overdue") else "",
        f"{intent.priority}-priority" if intent.priority else "",
    ]
    noun = " ".join([*filter(None, adjectives), "task"])
    after = " in progress" if intent.status == "in_progress" else ""
    after += " due today" if intent.only == "due today" else ""
    if not tasks:
        return f"You have no {noun}s{after}."
    show_status = intent.status is None and intent.only is None
    listed = ", ".join(_ref(t) + (f" ({_status(t)})" if show_status else "") for t in tasks)
    plural = "" if len(tasks) == 1 else "s"
    return f"You have {len(tasks)} {noun}{plural}{after}: {listed}."


def _summary(tasks: list[dict[str, Any]], today: date) -> str:
    if not tasks:
        return "You have no tasks yet."
    counts = ", ".join(
        f"{sum(task.get('status') == status for task in tasks)} {label}"
        for status, label in STATUS_LABELS.items()
    )
    plural = "" if len(tasks) == 1 else "s"
    text = f"You have {len(tasks)} task{plural}: {counts}."
    open_tasks = [task for task in tasks if task.get("status") != "completed"]
    if urgent := [task for task in open_tasks if task.get("priority") == "high"]:
        text += f" Open and high priority: {', '.join(map(_ref, urgent))}."
    if overdue := [
        t for t in open_tasks if t.get("due_date") and str(t["due_date"]) < today.isoformat()
    ]:
        text += f" Overdue: {', '.join(map(_ref, overdue))}."
    return text


_SKILLS = [
    ("create_task", 'add a task ("add a task to buy milk due friday")'),
    ("list_tasks", 'show your tasks ("what is still pending?")'),
    ("update_task", 'change or complete one ("mark task 3 done", "rename task 3 to ...")'),
    ("complete_task", 'complete one ("mark task 3 done")'),
    ("delete_task", 'delete one ("delete the milk task")'),
    ("create_task", 'plan a goal ("plan my week")'),
]


def _help_text(intent: Intent, offer: Offer) -> str:
    everything = bool(offer.handoffs)  # other agents can do what this one cannot
    skills = [text for tool, text in _SKILLS if everything or tool in offer.tools]
    if everything or "update_task" in offer.tools:
        skills = [skill for skill in skills if not skill.startswith("complete one")]
    if not skills:
        return "I have no task tools here, so I cannot read or change your tasks."
    hello = "Hi! " if intent.kind == "greet" else ""
    return f"{hello}I can help with your tasks: {'; '.join(skills)}."


# ---- arguments that fit the offered schema


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return cast(Mapping[str, Any], target)
    return schema


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
    "array": (list,),
    "object": (dict,),
}


def _accepts(schema: Mapping[str, Any], value: Any, root: Mapping[str, Any]) -> bool:
    """A small JSON Schema check: $ref, anyOf/oneOf, enum, const and type."""
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return any(_accepts(option, value, root) for option in schema[key])
    if "enum" in schema and value not in schema["enum"]:
        return False
    if "const" in schema and value != schema["const"]:
        return False
    types = schema.get("type")
    if types is None:
        return True
    return any(
        isinstance(value, _JSON_TYPES.get(name, (object,)))
        and not (isinstance(value, bool) and name in ("integer", "number"))
        for name in ([types] if isinstance(types, str) else types)
    )


def fit_arguments(wanted: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any] | None:
    """Keep the arguments the schema has and accepts; fill required ones; None if impossible."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    arguments = {
        name: value
        for name, value in wanted.items()
        if name in properties and value is not None and _accepts(properties[name], value, schema)
    }
    for name in schema.get("required", []):
        if name in arguments:
            continue
        prop = _resolve(properties.get(name, {}), schema)
        if "default" in prop:
            arguments[name] = prop["default"]
        elif _accepts(prop, None, schema):
            arguments[name] = None  # strict schemas list optional parameters as required
        else:
            return None
    return {name: arguments[name] for name in properties if name in arguments}


# --- 3. The SDK glue: input items in, output items and stream events out ------------------


@dataclass(frozen=True)
class Turn:
    """The user's latest message and what has been called since."""

    request: str
    results: tuple[ToolResult, ...]
    handed_off: frozenset[str]
    last_task_id: int | None = None  # the task earlier turns last spoke of, for "it"


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(text for part in content if isinstance(text := _get(part, "text"), str))
    return ""


def parse_output(output: Any) -> tuple[Any, str | None]:
    """A tool output as data, and its error message when it reports one."""
    text = _text_of(output)
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)  # a dict the SDK turned into text with str()
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = text
    if isinstance(value, dict):
        error = value.get("error", value.get("detail"))
        return value, (str(error) if error is not None else None)
    if isinstance(value, str) and re.search(r"\berror\b|\bnot found\b|\bfailed\b", value, _FLAGS):
        return value, value
    return value, None


def read_turn(input: str | Sequence[Any]) -> Turn:
    """Find the latest user message and pair each later tool call with its output."""
    if isinstance(input, str):
        return Turn(input, (), frozenset())
    items = list(input)
    users = [i for i, item in enumerate(items) if _get(item, "role") == "user"]
    if not users:
        return Turn("", (), frozenset())
    calls: dict[str, tuple[str, str]] = {}
    results: list[ToolResult] = []
    handed_off: set[str] = set()
    for item in items[users[-1] + 1 :]:
        kind = _get(item, "type")
        if kind == "function_call":
            calls[str(_get(item, "call_id"))] = (str(_get(item, "name")), _get(item, "arguments"))
        elif kind == "function_call_output" and (call := calls.get(str(_get(item, "call_id")))):
            name, raw_arguments = call
            output, error = parse_output(_get(item, "output"))
            if isinstance(output, dict) and set(output) == {"assistant"}:
                handed_off.add(name)  # the SDK's handoff message: {"assistant": "Planner"}
                continue
            try:
                arguments = json.loads(raw_arguments or "{}")
            except ValueError:
                arguments = {}
            results.append(ToolResult(name, arguments, output, error))
    request = _text_of(_get(items[users[-1]], "content"))
    return Turn(request, tuple(results), frozenset(handed_off), _last_task_id(items[: users[-1]]))


def _last_task_id(items: Sequence[Any]) -> int | None:
    """The id of the last single task a tool returned in earlier turns, if any."""
    last = None
    for item in items:
        if _get(item, "type") != "function_call_output":
            continue
        output, error = parse_output(_get(item, "output"))
        if isinstance(output, list) and len(output) == 1:
            output = output[0]
        if error is None and isinstance(output, dict) and isinstance(output.get("id"), int):
            last = output["id"]
    return last


def _offer(
    tools: Sequence[Tool],
    handoffs: Sequence[Handoff],
    handed_off: frozenset[str],
    routes: Mapping[str, str] | None = None,
) -> Offer:
    return Offer(
        routes=routes,
        tools={
            tool.name: schema
            for tool in tools
            if isinstance(schema := getattr(tool, "params_json_schema", None), dict)
        },
        handoffs={handoff.tool_name: handoff.tool_description for handoff in handoffs},
        handoff_schemas={handoff.tool_name: handoff.input_json_schema for handoff in handoffs},
        handed_off=handed_off,
    )


def text_pieces(text: str) -> list[str]:
    """Split text into word-sized pieces that concatenate back to it."""
    return [piece for piece in re.split(r"(?<=\s)(?=\S)", text) if piece]


def _word_count(value: Any) -> int:
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, Mapping):
        return sum(_word_count(v) for v in value.values())
    if isinstance(value, list | tuple):
        return sum(_word_count(v) for v in value)
    if hasattr(value, "model_dump"):
        return _word_count(value.model_dump())
    return 0


class OfflineModel(Model):
    """A deterministic model that acts on task requests with the tools it is offered.

    `routes` maps kinds of request ("plan", "create", "summary"...; see `IntentKind`) to the
    handoff tool that serves them, for an app with several agents: the model then hands off
    by that table alone. Without it, it picks a handoff whose name or description fits.
    """

    def __init__(
        self,
        delay: float = 0.0,
        today: Callable[[], date] | None = None,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        self.delay = delay  # seconds before each streamed text piece
        self.today = today or date.today
        self.routes = routes

    def next_action(
        self, input: str | Sequence[Any], tools: Sequence[Tool], handoffs: Sequence[Handoff]
    ) -> Action:
        """What the model does next for this conversation."""
        turn = read_turn(input)
        today = self.today()
        intent = parse_request(turn.request, today, turn.last_task_id)
        offer = _offer(tools, handoffs, turn.handed_off, self.routes)
        return decide(intent, turn.results, offer, today)

    def _respond(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        tools: list[Tool],
        handoffs: list[Handoff],
    ) -> tuple[TResponseOutputItem, Usage]:
        action = self.next_action(input, tools, handoffs)
        item: TResponseOutputItem
        if isinstance(action, ToolCall):
            # Unique per call: the SDK may skip a call id it has already seen completed.
            call_id = f"call_{uuid.uuid4().hex[:24]}"
            item = ResponseFunctionToolCall(
                id=f"fc_{call_id[5:]}",
                call_id=call_id,
                type="function_call",
                name=action.name,
                arguments=json.dumps(action.arguments),
                status="completed",
            )
            produced = 1 + _word_count(action.arguments)
        else:
            item = ResponseOutputMessage(
                id=f"msg_{uuid.uuid4().hex[:24]}",
                type="message",
                role="assistant",
                status="completed",
                content=[
                    ResponseOutputText(
                        type="output_text", text=action.text, annotations=[], logprobs=[]
                    )
                ],
            )
            produced = _word_count(action.text)
        consumed = _word_count(system_instructions) + _word_count(input)
        usage = Usage(
            requests=1,
            input_tokens=consumed,
            output_tokens=produced,
            total_tokens=consumed + produced,
        )
        return item, usage

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> ModelResponse:
        """The whole answer at once; with a delay it takes as long as the stream would."""
        item, usage = self._respond(system_instructions, input, tools, handoffs)
        if self.delay and isinstance(item, ResponseOutputMessage):
            text = cast(ResponseOutputText, item.content[0]).text
            await asyncio.sleep(self.delay * len(text_pieces(text)))
        return ModelResponse(output=[item], usage=usage, response_id=f"resp_{uuid.uuid4().hex}")

    async def stream_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: ResponsePromptParam | None = None,
    ) -> AsyncIterator[TResponseStreamEvent]:
        """The same answer as Responses API stream events, the text in word-sized pieces."""
        item, usage = self._respond(system_instructions, input, tools, handoffs)
        response = Response(
            id=f"resp_{uuid.uuid4().hex}",
            created_at=0,
            model="offline",
            object="response",
            output=[],
            tool_choice="auto",
            tools=[],
            top_p=None,
            parallel_tool_calls=False,
            status="in_progress",
        )
        numbers = iter(range(1_000_000))
        yield ResponseCreatedEvent(
            type="response.created", response=response, sequence_number=next(numbers)
        )
        yield ResponseInProgressEvent(
            type="response.in_progress", response=response, sequence_number=next(numbers)
        )
        if isinstance(item, ResponseFunctionToolCall):
            yield ResponseOutputItemAddedEvent(
                type="response.output_item.added",
                item=item.model_copy(update={"arguments": "", "status": "in_progress"}),
                output_index=0,
                sequence_number=next(numbers),
            )
            yield ResponseFunctionCallArgumentsDeltaEvent(
                type="response.function_call_arguments.delta",
                item_id=str(item.id),
                output_index=0,
                delta=item.arguments,
                sequence_number=next(numbers),
            )
            yield ResponseFunctionCallArgumentsDoneEvent.model_validate(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item.id,
                    "name": item.name,
                    "output_index": 0,
                    "arguments": item.arguments,
                    "sequence_number": next(numbers),
                }
            )
        elif isinstance(item, ResponseOutputMessage):
            part = cast(ResponseOutputText, item.content[0])
            yield ResponseOutputItemAddedEvent(
                type="response.output_item.added",
                item=item.model_copy(update={"content": [], "status": "in_progress"}),
                output_index=0,
                sequence_number=next(numbers),
            )
            yield ResponseContentPartAddedEvent(
                type="response.content_part.added",
                item_id=item.id,
                output_index=0,
                content_index=0,
                part=part.model_copy(update={"text": ""}),
                sequence_number=next(numbers),
            )
            for piece in text_pieces(part.text):
                if self.delay:
                    await asyncio.sleep(self.delay)
                yield ResponseTextDeltaEvent(
                    type="response.output_text.delta",
                    item_id=item.id,
                    output_index=0,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                    sequence_number=next(numbers),
                )
            yield ResponseTextDoneEvent(
                type="response.output_text.done",
                item_id=item.id,
                output_index=0,
                content_index=0,
                text=part.text,
                logprobs=[],
                sequence_number=next(numbers),
            )
            yield ResponseContentPartDoneEvent(
                type="response.content_part.done",
                item_id=item.id,
                output_index=0,
                content_index=0,
                part=part,
                sequence_number=next(numbers),
            )
        yield ResponseOutputItemDoneEvent(
            type="response.output_item.done",
            item=item,
            output_index=0,
            sequence_number=next(numbers),
        )
        usage_payload = ResponseUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            # model_validate: newer openai versions also require cache_write_tokens.
            input_tokens_details=InputTokensDetails.model_validate(
                {"cached_tokens": 0, "cache_write_tokens": 0}
            ),
            output_tokens_details=OutputTokensDetails(reasoning_tokens=0),
        )
        yield ResponseCompletedEvent(
            type="response.completed",
            response=response.model_copy(
                update={"output": [item], "status": "completed", "usage": usage_payload}
            ),
            sequence_number=next(numbers),
        )


class OfflineModelProvider(ModelProvider):
    """Serves one `OfflineModel` whatever the model name: `RunConfig(model_provider=...)`."""

    def __init__(
        self,
        delay: float = 0.0,
        today: Callable[[], date] | None = None,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        self.model = OfflineModel(delay=delay, today=today, routes=routes)

    def get_model(self, model_name: str | None) -> Model:
        return self.model
