"""POST /agent/chat: the TaskManager agent, driven by real models and real tools."""

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agents import Model, ModelBehaviorError
from agents.testing import ScriptedModel, assistant_message, function_call
from conftest import bearer, strings_in
from fastapi.testclient import TestClient
from openai import AsyncOpenAI
from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine

from course_shared.openai_standin import MISBEHAVIOURS, Misbehaviour, StandinConfig, run_standin
from task_api import agent, database, main
from task_api.agent import MAX_TURNS, run_config
from task_api.config import Settings, get_settings
from task_api.deps import get_agent_model
from task_api.events import TaskEventBroker
from task_api.main import app
from task_api.models import User


def chat(client: TestClient, message: str) -> Any:
    return client.post("/agent/chat", json={"message": message})


# --- the offline model, end to end -------------------------------------------------


def test_the_agent_adds_a_task(client: TestClient) -> None:
    response = chat(client, "Add a high priority task to buy milk")

    assert response.status_code == 200
    body = response.json()
    assert [call["name"] for call in body["tool_calls"]] == ["create_task"]
    assert body["model"] == "offline"
    assert body["usage"]["requests"] >= 2
    (task,) = client.get("/tasks").json()
    assert (task["title"].lower(), task["priority"]) == ("buy milk", "high")
    assert "milk" in body["reply"].lower()


def test_the_agent_lists_completes_and_deletes_tasks(client: TestClient) -> None:
    milk = client.post("/tasks", json={"title": "Buy milk"}).json()
    bank = client.post("/tasks", json={"title": "Call the bank"}).json()

    listed = chat(client, "What is still pending?").json()
    assert "Buy milk" in listed["reply"] and "Call the bank" in listed["reply"]

    chat(client, f"Mark task {milk['id']} done")
    assert client.get(f"/tasks/{milk['id']}").json()["status"] == "completed"

    chat(client, f"Delete task {bank['id']}")
    assert client.get(f"/tasks/{bank['id']}").status_code == 404


def test_no_phrasing_reaches_another_users_tasks(
    client: TestClient, other_client: TestClient
) -> None:
    secret = other_client.post("/tasks", json={"title": "Bob's secret"}).json()

    for message in [
        "Show me all tasks",
        f"Show task {secret['id']}",
        f"Mark task {secret['id']} done",
        f"Delete task {secret['id']}",
        "Delete the secret task",
    ]:
        body = chat(client, message).json()
        leaked = [text for text in strings_in(body) if "Bob's secret" in text]
        assert leaked == [], message

    assert other_client.get(f"/tasks/{secret['id']}").json() == secret


def test_a_model_cannot_say_whose_tasks_to_use(
    client: TestClient, other_client: TestClient, use_model: Callable[[Model], None]
) -> None:
    secret = other_client.post("/tasks", json={"title": "Bob's secret"}).json()
    bob = other_client.get("/users/me").json()["id"]
    # A model that tries anyway: the tools take no user, so the caller's id is the only one.
    model = ScriptedModel(
        [
            [
                function_call(
                    "get_task", {"task_id": secret["id"], "owner_id": bob}, call_id="c1"
                ),
                function_call(
                    "delete_task", {"task_id": secret["id"], "user_id": bob}, call_id="c2"
                ),
            ],
            [assistant_message("Done.")],
        ]
    )
    use_model(model)

    body = chat(client, "Show me Bob's task, then delete it").json()

    not_found = {"error": f"Task {secret['id']} not found"}
    assert [json.loads(call["output"]) for call in body["tool_calls"]] == [not_found, not_found]
    assert other_client.get(f"/tasks/{secret['id']}").json() == secret
    model.assert_complete()


def test_changes_made_by_the_agent_reach_the_event_stream(
    client: TestClient, broker: TaskEventBroker, user: User
) -> None:
    chat(client, "Add a task to water the plants")

    assert user.id is not None
    assert [event.type for event in broker.recent[user.id]] == ["task.created"]


# --- scripted models: exact runs ---------------------------------------------------


def test_a_tool_error_is_passed_to_the_model(client: TestClient, use_model: Any) -> None:
    model = ScriptedModel(
        [
            [function_call("get_task", {"task_id": 42}, call_id="call-1")],
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


def test_a_failed_run_keeps_the_tool_calls_that_finished(
    client: TestClient, use_model: Any, broker: TaskEventBroker, user: User
) -> None:
    model = ScriptedModel(
        [
            [function_call("create_task", {"title": "Done before"}, call_id="call-1")],
            ModelBehaviorError("the model sent something unusable"),
        ]
    )
    use_model(model)

    response = chat(client, "Add a task")

    assert response.status_code == 502
    assert response.json() == {"detail": "The model's answer could not be used"}
    assert [task["title"] for task in client.get("/tasks").json()] == ["Done before"]
    assert user.id is not None
    assert [event.type for event in broker.recent[user.id]] == ["task.created"]
    model.assert_complete()


def test_a_tool_call_is_saved_whole_or_not_at_all(client: TestClient, use_model: Any) -> None:
    client.post("/tasks", json={"title": "Buy milk"})
    model = ScriptedModel(
        [
            [function_call("update_task", {"task_id": 1, "title": "x" * 500}, call_id="c1")],
            [assistant_message("That title is too long.")],
        ]
    )
    use_model(model)

    body = chat(client, "Rename task 1").json()

    assert "error" in json.loads(body["tool_calls"][0]["output"])
    assert client.get("/tasks/1").json()["title"] == "Buy milk"
    model.assert_complete()


def test_a_model_that_fails_in_any_way_is_502_logged_once(
    client: TestClient, use_model: Callable[[Model], None], caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel([OverflowError("date value out of range")])
    use_model(model)

    response = chat(client, "Add a task to buy milk in 999999999 days")

    assert response.status_code == 502
    assert response.json() == {"detail": "The model's answer could not be used"}
    [record] = [r for r in caplog.records if r.name == "task_api.agent"]
    assert record.exc_info is not None and isinstance(record.exc_info[1], OverflowError)
    model.assert_complete()


def test_a_run_that_ends_without_a_reply_is_502(
    client: TestClient, use_model: Callable[[Model], None]
) -> None:
    model = ScriptedModel([[]])  # the model answers, with nothing in it
    use_model(model)

    response = chat(client, "Hello?")

    assert response.status_code == 502
    assert response.json() == {"detail": "The model ended its answer without a reply"}
    model.assert_complete()


def test_too_many_turns_is_502(client: TestClient, use_model: Any) -> None:
    step = [function_call("list_tasks", {}, call_id="call-again")]
    model = ScriptedModel([step] * (MAX_TURNS + 1))
    use_model(model)

    response = chat(client, "List my tasks forever")

    assert response.status_code == 502
    assert response.json() == {"detail": f"The agent did not finish within {MAX_TURNS} turns"}
    assert model.remaining_steps == 1  # stopped after MAX_TURNS answers, before the last


# --- the real OpenAI client, against a local stand-in server ----------------------


@pytest.fixture
def standin(
    settings: Settings, use_provider: Callable[[Settings], None]
) -> Iterator[tuple[StandinConfig, Settings]]:
    """A local OpenAI-compatible server, and the app pointed at it."""
    config = StandinConfig(tool_call=("list_tasks", {}), require_api_key="test-key")
    with run_standin(config) as base_url:
        use_standin = settings.model_copy(
            update={
                "agent_model": "standin-model",
                "openai_base_url": base_url,
                "openai_api_key": SecretStr("test-key"),
            }
        )
        use_provider(use_standin)
        yield config, use_standin


def test_the_openai_client_path_calls_tools(
    client: TestClient, standin: tuple[StandinConfig, Settings]
) -> None:
    config, _ = standin
    client.post("/tasks", json={"title": "Buy milk"})

    response = chat(client, "What do I have to do?")

    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "standin-model"
    assert [call["name"] for call in body["tool_calls"]] == ["list_tasks"]
    assert [task["title"] for task in json.loads(body["tool_calls"][0]["output"])] == ["Buy milk"]
    assert "Buy milk" in body["reply"]
    first = config.requests[0]
    assert first.headers["authorization"] == "Bearer test-key"
    assert first.body["model"] == "standin-model"
    assert "create_task" in {tool["function"]["name"] for tool in first.body["tools"]}


@pytest.mark.parametrize("status", [500, 503, 429, 400])
def test_a_provider_error_is_502(
    client: TestClient, standin: tuple[StandinConfig, Settings], status: int
) -> None:
    config, _ = standin
    config.fail_with = status

    response = chat(client, "What do I have to do?")

    assert response.status_code == 502
    assert response.json()["detail"] == (
        f"The model provider answered with an error (HTTP {status})"
    )


def test_a_wrong_api_key_is_502_and_the_key_is_not_shown(
    client: TestClient, standin: tuple[StandinConfig, Settings]
) -> None:
    config, _ = standin
    config.require_api_key = "another-key"

    response = chat(client, "What do I have to do?")

    assert response.status_code == 502
    # The whole body: the provider's own error, which can quote the key, is not passed on.
    assert response.json() == {"detail": "The model provider answered with an error (HTTP 401)"}


def test_an_unreachable_provider_is_502(
    client: TestClient, settings: Settings, use_provider: Callable[[Settings], None]
) -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    use_provider(
        settings.model_copy(
            update={"agent_model": "m", "openai_base_url": f"http://127.0.0.1:{port}/v1"}
        )
    )

    response = chat(client, "Hello")

    assert response.status_code == 502
    assert response.json() == {"detail": "The model provider could not be reached"}


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_a_broken_answer_from_the_provider_is_502(
    client: TestClient, standin: tuple[StandinConfig, Settings], misbehaviour: Misbehaviour
) -> None:
    config, _ = standin
    config.misbehave = misbehaviour  # 200 with an HTML page, {}, garbage, a stream cut off

    response = chat(client, "What do I have to do?")

    assert response.status_code == 502
    assert response.json()["detail"] in {
        "The model's answer could not be used",
        "The model ended its answer without a reply",
        "The model provider could not be reached",
    }


def test_the_app_opens_one_model_and_closes_it_at_shutdown(
    engine: Engine,
    user: User,
    settings: Settings,
    standin: tuple[StandinConfig, Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, provider = standin
    monkeypatch.setattr(main, "get_settings", lambda: provider)  # what the lifespan reads
    monkeypatch.setattr(database, "engine", engine)
    clients: list[AsyncOpenAI] = []

    class RecordedClient(AsyncOpenAI):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            clients.append(self)

    monkeypatch.setattr(agent, "AsyncOpenAI", RecordedClient)
    app.dependency_overrides.pop(get_agent_model)  # the app's own, from its lifespan

    with TestClient(app, headers=bearer(user, settings)) as client:  # runs the lifespan
        assert chat(client, "What do I have to do?").status_code == 200
        assert chat(client, "And now?").status_code == 200
        [opened] = clients
        assert not opened.is_closed()

    assert opened.is_closed()


def test_a_slow_model_is_504(client: TestClient, standin: tuple[StandinConfig, Settings]) -> None:
    config, settings = standin
    config.first_token_delay = 5
    impatient = settings.model_copy(update={"agent_timeout_seconds": 0.2})
    app.dependency_overrides[get_settings] = lambda: impatient

    response = chat(client, "What do I have to do?")

    assert response.status_code == 504
    assert response.json() == {"detail": "The model did not finish within 0.2 seconds"}


# --- the request ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "   "},
        {"message": "x" * 4001},
        {"message": 3},
        {"message": "hi", "model": "gpt-5"},
    ],
)
def test_a_bad_request_is_422(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/agent/chat", json=body).status_code == 422


def test_the_agent_needs_a_token(anonymous_client: TestClient) -> None:
    response = anonymous_client.post("/agent/chat", json={"message": "Show my tasks"})

    assert response.status_code == 401


def test_a_real_model_needs_a_key_or_a_server() -> None:
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        Settings(_env_file=None, agent_model="gpt-4.1-mini")


def test_tracing_needs_to_be_asked_for_and_a_key(settings: Settings) -> None:
    asked = settings.model_copy(update={"agent_tracing": True})
    with_key = asked.model_copy(update={"openai_api_key": SecretStr("sk-test")})

    assert run_config(asked).tracing_disabled
    assert run_config(with_key.model_copy(update={"agent_tracing": False})).tracing_disabled
    assert not run_config(with_key).tracing_disabled
    assert run_config(with_key).tracing == {"api_key": "sk-test"}  # also when it came from .env
