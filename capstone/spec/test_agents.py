"""Triage and handoffs: the TaskManager hands each request to its specialist, whose tools
change the user's tasks; the same turn streamed as server-sent events; what each agent can
do, for the API's clients."""

import uuid

import httpx
import pytest
from conftest import User

from course_shared.sse import parse_sse

pytestmark = pytest.mark.agents


def test_a_request_about_tasks_is_handed_to_the_clerk(alice: User) -> None:
    word = uuid.uuid4().hex[:8]
    reply = alice.api.post("/agent/chat", json={"message": f"Add a task to buy {word}"})

    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["agent"] == "Clerk"
    assert [call["name"] for call in body["tool_calls"]] == ["create_task"]
    titles = [task["title"] for task in alice.api.get("/tasks", params={"limit": 100}).json()]
    assert f"Buy {word}" in titles


def test_a_greeting_is_answered_by_the_triage_itself(alice: User) -> None:
    body = alice.api.post("/agent/chat", json={"message": "hi!"}).json()
    assert (body["agent"], body["tool_calls"]) == ("TaskManager", [])


def test_the_stream_shows_each_agent_each_tool_and_the_reply(alice: User) -> None:
    word = uuid.uuid4().hex[:8]
    reply = alice.api.post("/agent/chat/stream", json={"message": f"Add a task to buy {word}"})

    events = parse_sse(reply.text)
    names = [event.event for event in events]
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert [event.json()["name"] for event in events if event.event == "agent"] == [
        "TaskManager",
        "Clerk",
    ]
    assert names.index("tool_call") < names.index("tool_output") < names.index("delta")
    assert names[-1] == "done" and names.count("done") == 1
    done = events[-1].json()
    assert done["reply"] == "".join(e.json()["text"] for e in events if e.event == "delta")
    assert done["session_id"]


def test_a_conversation_goes_on_with_its_session_id(alice: User) -> None:
    word = uuid.uuid4().hex[:8]
    first = alice.api.post("/agent/chat", json={"message": f"Add a task to buy {word}"}).json()
    then = alice.api.post(
        "/agent/chat", json={"message": "Mark it as done", "session_id": first["session_id"]}
    ).json()

    assert then["session_id"] == first["session_id"]
    assert [call["name"] for call in then["tool_calls"]] == ["complete_task"]


def test_the_capabilities_describe_each_agent_and_its_tools(
    alice: User, anonymous: httpx.Client
) -> None:
    reply = alice.api.get("/agent/capabilities")

    assert reply.status_code == 200, reply.text
    triage, *specialists = reply.json()["agents"]
    assert triage["name"] == "TaskManager"
    assert triage["handoffs"] == [agent["name"] for agent in specialists]
    assert {"Planner", "Clerk", "Reporter"} <= set(triage["handoffs"])
    clerk = next(agent for agent in specialists if agent["name"] == "Clerk")
    create = next(tool for tool in clerk["tools"] if tool["name"] == "create_task")
    assert "title" in create["parameters"]["properties"]
    assert anonymous.get("/agent/capabilities").status_code == 401
