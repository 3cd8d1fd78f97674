"""POST /agent/chat and /agent/chat/stream: the agents, driven by real models and real tools."""

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agents import Model, ModelBehaviorError
from agents.testing import ScriptedModel, assistant_message, function_call
from conftest import PausingModel, strings_in
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlmodel import Session, select

from course_shared.offline_model import OfflineModel
from course_shared.openai_standin import MISBEHAVIOURS, Misbehaviour, StandinConfig, run_standin
from course_shared.sse import ServerSentEvent, iter_sse, parse_sse
from task_api.agents.provider import OFFLINE_ROUTES
from task_api.agents.turns import MAX_TURNS
from task_api.config import Settings
from task_api.models import TaskEvent
from task_api.services import TaskService

UseModel = Callable[[Model], None]
UseProvider = Callable[[Settings], None]


def chat(client: TestClient, message: str, **options: Any) -> Any:
    return client.post("/agent/chat", json={"message": message, **options})


def stream(client: TestClient, message: str, **options: Any) -> Any:
    return client.post("/agent/chat/stream", json={"message": message, **options})


def events_of(response: Any) -> list[ServerSentEvent]:
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


# --- the agents and their handoffs, with the offline model ----------------------------


@pytest.mark.parametrize(
    ("message", "specialist", "tools"),
    [
        ("Add a high priority task to buy milk", "Clerk", ["create_task"]),
        ("Plan my week", "Planner", ["create_task"] * 4),
        ("What is still pending?", "Reporter", ["list_tasks"]),
    ],
)
def test_triage_hands_each_request_to_its_specialist(
    client: TestClient, message: str, specialist: str, tools: list[str]
) -> None:
    events = events_of(stream(client, message))

    assert [e.json()["name"] for e in events if e.event == "agent"] == ["TaskManager", specialist]
    assert [e.json()["name"] for e in events if e.event == "tool_call"] == tools
    assert events[-1].event == "done"
    assert events[-1].json()["agent"] == specialist


def test_the_json_reply_says_what_happened_and_what_it_cost(client: TestClient) -> None:
    response = chat(client, "Add a high priority task to buy milk")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "reply", "session_id", "agent", "tool_calls", "usage", "model", "duration_ms"
    }  # fmt: skip
    assert (body["agent"], body["model"]) == ("Clerk", "offline")
    assert [call["name"] for call in body["tool_calls"]] == ["create_task"]
    assert body["usage"]["requests"] == 3  # triage, the clerk's tool call, its reply
    assert body["duration_ms"] >= 0
    (task,) = client.get("/tasks").json()
    assert (task["title"], task["priority"]) == ("Buy milk", "high")
    assert "Buy milk" in body["reply"]


def test_the_stream_ends_with_done_whose_reply_the_deltas_spell(client: TestClient) -> None:
    events = events_of(stream(client, "What is still pending?"))

    done = events[-1].json()
    assert "".join(e.json()["text"] for e in events if e.event == "delta") == done["reply"]
    assert set(done) == {"reply", "session_id", "agent", "usage", "model", "duration_ms"}


def test_a_tool_output_names_its_call(client: TestClient) -> None:
    events = events_of(stream(client, "Add a task to buy milk"))

    call = next(e.json() for e in events if e.event == "tool_call")
    output = next(e.json() for e in events if e.event == "tool_output")
    assert (output["call_id"], output["name"]) == (call["call_id"], "create_task")
    assert json.loads(output["output"])["title"] == "Buy milk"


def test_every_kind_of_request_has_a_specialist() -> None:
    assert set(OFFLINE_ROUTES.values()) == {
        "transfer_to_planner",
        "transfer_to_clerk",
        "transfer_to_reporter",
    }


def test_a_greeting_is_answered_by_triage(client: TestClient) -> None:
    body = chat(client, "hi!").json()

    assert body["agent"] == "TaskManager"
    assert body["tool_calls"] == []


def test_changes_made_by_the_agents_reach_the_event_stream(
    client: TestClient, session: Session
) -> None:
    chat(client, "Add a task to water the plants")

    assert [event.type for event in session.exec(select(TaskEvent))] == ["task.created"]


# --- conversations ----------------------------------------------------------------------


def test_a_conversation_is_remembered(client: TestClient, use_model: UseModel) -> None:
    model = ScriptedModel([[assistant_message("Noted.")], [assistant_message("Milk.")]])
    use_model(model)
    first = chat(client, "Remember: I like milk").json()

    second = chat(client, "What do I like?", session_id=first["session_id"]).json()

    assert second["session_id"] == first["session_id"]
    said_before = strings_in(model.calls[1].input)
    assert "Remember: I like milk" in said_before and "Noted." in said_before
    model.assert_complete()


def test_the_offline_model_reads_the_conversation(client: TestClient) -> None:
    first = chat(client, "Add a task to buy milk").json()
    [milk] = client.get("/tasks").json()

    second = chat(client, "Mark it done", session_id=first["session_id"]).json()

    assert second["tool_calls"][0]["name"] == "complete_task"
    assert client.get(f"/tasks/{milk['id']}").json()["status"] == "completed"


def test_an_unknown_conversation_is_404(client: TestClient) -> None:
    for send in (chat, stream):
        response = send(client, "hello", session_id="no-such-conversation")
        assert response.status_code == 404
        assert response.json()["detail"] == "Conversation no-such-conversation not found"


def test_others_cannot_continue_a_conversation(
    client: TestClient, other_client: TestClient
) -> None:
    alices = chat(client, "Add a task to buy milk").json()["session_id"]

    response = stream(other_client, "What did alice say?", session_id=alices)

    assert response.status_code == 404
    assert len(client.get(f"/conversations/{alices}").json()["messages"]) == 2


# --- what the caller may ask of the model ------------------------------------------------


def test_temperature_and_max_output_tokens_reach_the_model(
    client: TestClient, use_model: UseModel
) -> None:
    model = ScriptedModel([[assistant_message("Hi.")]])
    use_model(model)

    chat(client, "hello", temperature=0.2, max_output_tokens=50)

    settings = model.calls[0].model_settings
    assert (settings.temperature, settings.max_tokens) == (0.2, 50)
    model.assert_complete()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 4001},
        {"message": "a\x00b"},
        {"message": 3},
        {"message": "hi", "model": "gpt-5"},
        {"message": "hi", "temperature": -0.1},
        {"message": "hi", "temperature": 2.5},
        {"message": "hi", "max_output_tokens": 0},
        {"message": "hi", "max_output_tokens": 4001},
        {"message": "hi", "session_id": "has space"},
        {"message": "hi", "session_id": "x" * 65},
    ],
)
def test_a_bad_request_is_422_not_a_run(client: TestClient, body: dict[str, Any]) -> None:
    for path in ("/agent/chat", "/agent/chat/stream"):
        assert client.post(path, json=body).status_code == 422
    assert client.get("/conversations").json() == []


@pytest.mark.parametrize(
    "content", ['{"message": "hi", "temperature": NaN}', '{"message": "\\ud800"}']
)
def test_json_that_is_not_strict_json_is_422(client: TestClient, content: str) -> None:
    response = client.post(
        "/agent/chat", content=content, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422


def test_the_agents_need_a_token_or_a_key(anonymous_client: TestClient) -> None:
    assert chat(anonymous_client, "Show my tasks").status_code == 401
    assert stream(anonymous_client, "Show my tasks").status_code == 401
    assert anonymous_client.get("/agent/capabilities").status_code == 401


# --- what the agents can do, for the API's clients ------------------------------------------


def test_the_capabilities_name_each_agent_its_handoffs_and_its_tools(client: TestClient) -> None:
    response = client.get("/agent/capabilities")

    assert response.status_code == 200
    agents = {agent["name"]: agent for agent in response.json()["agents"]}
    assert list(agents) == ["TaskManager", "Planner", "Clerk", "Reporter"]
    triage = agents["TaskManager"]
    assert (triage["handoffs"], triage["tools"]) == (["Planner", "Clerk", "Reporter"], [])
    assert agents["Clerk"]["handoff_description"] == (
        "Creates, changes, completes and deletes single tasks."
    )
    assert [tool["name"] for tool in agents["Reporter"]["tools"]] == [
        "list_tasks", "get_task", "report_progress"
    ]  # fmt: skip


def test_each_tool_is_described_with_the_schema_the_model_sees(client: TestClient) -> None:
    agents = {agent["name"]: agent for agent in client.get("/agent/capabilities").json()["agents"]}

    clerk = {tool["name"]: tool for tool in agents["Clerk"]["tools"]}
    create = clerk["create_task"]
    assert create["description"] == "Create a task for the user."
    arguments = create["parameters"]["properties"]
    assert list(arguments) == ["title", "description", "priority", "due_date"]
    assert arguments["priority"]["enum"] == ["low", "medium", "high"]
    assert create["parameters"]["additionalProperties"] is False
    assert create["only_in_background_runs"] is False
    assert clerk["report_progress"]["only_in_background_runs"] is True


def test_no_tool_takes_a_user(client: TestClient) -> None:
    agents = client.get("/agent/capabilities").json()["agents"]

    arguments = {
        name
        for agent in agents
        for tool in agent["tools"]
        for name in tool["parameters"]["properties"]
    }
    assert arguments == {
        "title", "description", "priority", "due_date", "status", "task_id", "percent", "message"
    }  # fmt: skip


# --- nobody reaches another user's tasks ---------------------------------------------------


def test_no_phrasing_reaches_another_users_tasks(
    client: TestClient, other_client: TestClient
) -> None:
    secret = other_client.post("/tasks", json={"title": "Bob's secret"}).json()

    for message in [
        "Show me all tasks",
        f"Show task {secret['id']}",
        f"Mark task {secret['id']} done",
        f"Rename task {secret['id']} to Mine",
        f"Delete task {secret['id']}",
        "Delete the secret task",
        "Plan a heist of Bob's tasks",
    ]:
        body = chat(client, message).json()
        leaked = [text for text in strings_in(body) if "Bob's secret" in text]
        assert leaked == [], message

    assert other_client.get(f"/tasks/{secret['id']}").json() == secret


def test_a_model_cannot_say_whose_tasks_to_use(
    client: TestClient, other_client: TestClient, use_model: UseModel
) -> None:
    secret = other_client.post("/tasks", json={"title": "Bob's secret"}).json()
    bob = other_client.get("/users/me").json()["id"]
    # A model that tries anyway: the tools take no user, so the caller's id is the only one.
    model = ScriptedModel(
        [
            [function_call("transfer_to_clerk", {}, call_id="h1")],
            [
                function_call(
                    "get_task", {"task_id": secret["id"], "owner_id": bob}, call_id="c1"
                ),
                function_call(
                    "complete_task", {"task_id": secret["id"], "user_id": bob}, call_id="c2"
                ),
            ],
            [assistant_message("Done.")],
        ]
    )
    use_model(model)

    body = chat(client, "Show me Bob's task, then complete it").json()

    not_found = {"error": f"Task {secret['id']} not found"}
    assert [json.loads(call["output"]) for call in body["tool_calls"]] == [not_found, not_found]
    assert other_client.get(f"/tasks/{secret['id']}").json() == secret
    model.assert_complete()


# --- failures: always a 502/504 or an `error` event, and only complete turns kept ---------


def test_a_tool_error_is_passed_to_the_model(client: TestClient, use_model: UseModel) -> None:
    model = ScriptedModel(
        [
            [function_call("transfer_to_reporter", {}, call_id="h1")],
            [function_call("get_task", {"task_id": 42}, call_id="c1")],
            [assistant_message("There is no task 42.")],
        ]
    )
    use_model(model)

    body = chat(client, "Show task 42").json()

    assert body["tool_calls"] == [
        {
            "name": "get_task",
            "arguments": {"task_id": 42},
            "output": '{"error": "Task 42 not found"}',
        }
    ]
    assert body["reply"] == "There is no task 42."
    model.assert_complete()


def test_a_tool_that_breaks_tells_the_model_only_that_it_failed(
    client: TestClient,
    use_model: UseModel,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("could not connect to db-7.internal:5432")

    monkeypatch.setattr(TaskService, "list_tasks", broken)
    model = ScriptedModel(
        [
            [function_call("transfer_to_reporter", {}, call_id="h1")],
            [function_call("list_tasks", {}, call_id="c1")],
            [assistant_message("Something went wrong.")],
        ]
    )
    use_model(model)

    body = chat(client, "What is still pending?").json()

    assert body["tool_calls"][0]["output"] == '{"error": "The tool failed"}'
    [record] = [r for r in caplog.records if r.name == "task_api.agents.tools"]
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)
    model.assert_complete()


def test_a_failed_run_keeps_the_tool_calls_that_finished_but_not_the_turn(
    client: TestClient, use_model: UseModel
) -> None:
    model = ScriptedModel(
        [
            [function_call("transfer_to_clerk", {}, call_id="h1")],
            [function_call("create_task", {"title": "Done before"}, call_id="c1")],
            ModelBehaviorError("the model sent something unusable"),
        ]
    )
    use_model(model)

    response = chat(client, "Add a task")

    assert response.status_code == 502
    assert response.json()["detail"] == "The model's answer could not be used"
    assert [task["title"] for task in client.get("/tasks").json()] == ["Done before"]
    assert client.get("/conversations").json() == []
    model.assert_complete()


def test_a_model_that_fails_in_any_way_is_an_error_event_logged_once(
    client: TestClient, use_model: UseModel, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel([OverflowError("date value out of range")])
    use_model(model)

    events = events_of(stream(client, "Add a task to buy milk in 999999999 days"))

    assert events[-1].event == "error"
    assert events[-1].json() == {"detail": "The model's answer could not be used", "status": 502}
    [record] = [r for r in caplog.records if r.name == "task_api.agents.turns"]
    assert record.exc_info is not None and isinstance(record.exc_info[1], OverflowError)
    model.assert_complete()


def test_a_run_that_ends_without_a_reply_is_502(client: TestClient, use_model: UseModel) -> None:
    model = ScriptedModel([[]])  # the model answers, with nothing in it
    use_model(model)

    response = chat(client, "Hello?")

    assert response.status_code == 502
    assert response.json()["detail"] == "The model ended its answer without a reply"
    model.assert_complete()


def test_too_many_turns_is_502(client: TestClient, use_model: UseModel) -> None:
    handoff = [[function_call("transfer_to_clerk", {}, call_id="h1")]]
    again = [[function_call("list_tasks", {}, call_id=f"c{n}")] for n in range(MAX_TURNS)]
    model = ScriptedModel(handoff + again)
    use_model(model)

    response = chat(client, "Go round in circles")

    assert response.status_code == 502
    assert response.json()["detail"] == f"The agent did not finish within {MAX_TURNS} turns"
    assert model.remaining_steps == 1  # stopped after MAX_TURNS answers, before the last


def offline() -> OfflineModel:
    return OfflineModel(routes=OFFLINE_ROUTES)


def test_a_client_that_goes_away_cancels_the_run(client: TestClient, use_model: UseModel) -> None:
    model = PausingModel(offline(), pause_at=1)
    use_model(model)

    with client.stream("POST", "/agent/chat/stream", json={"message": "hello"}) as response:
        # Keep the reader: dropping it would close the response, and leave too early.
        events = iter_sse(response.iter_lines())
        assert next(events).event == "agent"
        assert model.waiting.wait(timeout=10)  # the model is working when the client leaves

    # Waits for the server to notice, and fails rather than hangs if it never does.
    assert model.cancelled.wait(timeout=10)


def test_a_client_that_goes_away_leaves_no_half_turn(
    client: TestClient, use_model: UseModel
) -> None:
    session_id = chat(client, "hello").json()["session_id"]
    model = PausingModel(offline(), pause_at=3)  # triage, the clerk's tool call: then wait
    use_model(model)

    body = {"message": "add a task to buy milk", "session_id": session_id}
    with client.stream("POST", "/agent/chat/stream", json=body) as response:
        events = iter_sse(response.iter_lines())
        seen = [next(events).event for _ in range(4)]
        assert seen == ["agent", "agent", "tool_call", "tool_output"]
        assert model.waiting.wait(timeout=10)
    assert model.cancelled.wait(timeout=10)

    messages = client.get(f"/conversations/{session_id}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert [task["title"] for task in client.get("/tasks").json()] == ["Buy milk"]


def test_a_conversation_deleted_during_its_turn_ends_with_an_error_event(
    client: TestClient, use_model: UseModel
) -> None:
    session_id = chat(client, "hello").json()["session_id"]
    model = PausingModel(offline(), pause_at=1)
    use_model(model)

    body = {"message": "what is still pending?", "session_id": session_id}
    with client.stream("POST", "/agent/chat/stream", json=body) as response:
        events = iter_sse(response.iter_lines())
        assert next(events).event == "agent"
        assert model.waiting.wait(timeout=10)
        assert client.delete(f"/conversations/{session_id}").status_code == 204
        model.resume()

        *_, last = events

    detail = f"Conversation {session_id} not found"
    assert (last.event, last.json()) == ("error", {"detail": detail, "status": 404})


# --- the real OpenAI client, against a local stand-in server ------------------------------


@pytest.fixture
def standin_provider(settings: Settings) -> Iterator[tuple[StandinConfig, Settings]]:
    """A local OpenAI-compatible server, and settings that name it as the provider."""
    config = StandinConfig(tool_call=("transfer_to_reporter", {}), require_api_key="test-key")
    with run_standin(config) as base_url:
        provider = settings.model_copy(
            update={
                "agent_model": "standin-model",
                "openai_base_url": base_url,
                "openai_api_key": SecretStr("test-key"),
            }
        )
        yield config, provider


@pytest.fixture
def standin(
    standin_provider: tuple[StandinConfig, Settings], use_provider: UseProvider
) -> StandinConfig:
    """The stand-in, with the agents pointed at it."""
    config, provider = standin_provider
    use_provider(provider)
    return config


def test_the_openai_client_path_hands_off(client: TestClient, standin: StandinConfig) -> None:
    events = events_of(stream(client, "What do I have to do?"))

    assert [e.json()["name"] for e in events if e.event == "agent"] == ["TaskManager", "Reporter"]
    done = events[-1].json()
    assert (done["model"], done["agent"]) == ("standin-model", "Reporter")
    first = standin.requests[0]
    assert first.headers["authorization"] == "Bearer test-key"
    assert "transfer_to_reporter" in {tool["function"]["name"] for tool in first.body["tools"]}


def test_the_responses_api_path_hands_off_and_streams(
    client: TestClient,
    standin_provider: tuple[StandinConfig, Settings],
    use_provider: UseProvider,
) -> None:
    config, provider = standin_provider
    use_provider(provider.model_copy(update={"openai_api": "responses"}))  # as OpenAI's own

    events = events_of(stream(client, "What do I have to do?"))

    assert [e.json()["name"] for e in events if e.event == "agent"] == ["TaskManager", "Reporter"]
    assert len([e for e in events if e.event == "delta"]) > 1
    assert events[-1].event == "done"
    assert {request.path for request in config.requests} == {"/v1/responses"}
    names = {tool["name"] for tool in config.requests[0].body["tools"]}
    assert "transfer_to_reporter" in names


@pytest.mark.parametrize("status", [500, 503, 429, 400])
def test_a_provider_error_is_502(client: TestClient, standin: StandinConfig, status: int) -> None:
    standin.fail_with = status

    response = chat(client, "What do I have to do?")

    assert response.status_code == 502
    assert response.json()["detail"] == (
        f"The model provider answered with an error (HTTP {status})"
    )


def test_a_wrong_api_key_is_502_and_the_key_is_not_shown(
    client: TestClient, standin: StandinConfig
) -> None:
    standin.require_api_key = "another-key"

    response = chat(client, "What do I have to do?")

    assert response.status_code == 502
    assert [text for text in strings_in(response.json()) if "test-key" in text] == []


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_a_broken_answer_is_an_error_event_and_not_remembered(
    client: TestClient, standin: StandinConfig, misbehaviour: Misbehaviour
) -> None:
    standin.misbehave = misbehaviour  # 200 with an HTML page, {}, garbage, a stream cut off

    events = events_of(stream(client, "What do I have to do?"))

    assert events[-1].event == "error"
    assert events[-1].json()["status"] == 502
    assert client.get("/conversations").json() == []


def test_an_unreachable_provider_is_502(
    client: TestClient, settings: Settings, use_provider: UseProvider
) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    update = {"agent_model": "m", "openai_base_url": f"http://127.0.0.1:{port}/v1"}
    use_provider(settings.model_copy(update=update))

    response = chat(client, "Hello")

    assert response.status_code == 502
    assert response.json()["detail"] == "The model provider could not be reached"


def test_a_slow_model_is_504(
    client: TestClient,
    standin_provider: tuple[StandinConfig, Settings],
    use_provider: UseProvider,
) -> None:
    config, provider = standin_provider
    config.first_token_delay = 5
    use_provider(provider.model_copy(update={"agent_timeout_seconds": 0.2}))

    response = chat(client, "What do I have to do?")

    assert response.status_code == 504
    assert response.json()["detail"] == "The model did not finish within 0.2 seconds"
