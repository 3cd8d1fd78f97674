"""POST /agent/chat/stream and the conversations the agent remembers."""

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from agents import Model, ModelBehaviorError
from agents.testing import ScriptedModel, assistant_message
from conftest import strings_in
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlmodel import Session

from course_shared.offline_model import OfflineModel
from course_shared.openai_standin import MISBEHAVIOURS, Misbehaviour, StandinConfig, run_standin
from course_shared.sse import ServerSentEvent, iter_sse, parse_sse
from task_api.config import Settings
from task_api.errors import ConversationNotFound
from task_api.memory import ConversationStore
from task_api.models import AgentSession, User


def stream(client: TestClient, message: str, session_id: str | None = None) -> Any:
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    return client.post("/agent/chat/stream", json=body)


def events_of(response: Any) -> list[ServerSentEvent]:
    assert response.status_code == 200, response.text
    return parse_sse(response.text)


def test_the_run_streams_in_the_documented_order(client: TestClient) -> None:
    events = events_of(stream(client, "Add a task to buy milk"))

    names = [e.event for e in events]
    assert names[:3] == ["agent", "tool_call", "tool_output"]
    assert set(names[3:-1]) == {"delta"}
    assert names[-1] == "done"
    assert events[0].json() == {"name": "TaskManager"}
    call, output = events[1].json(), events[2].json()
    assert (call["name"], call["arguments"]["title"]) == ("create_task", "Buy milk")
    assert (output["call_id"], output["name"]) == (call["call_id"], "create_task")
    assert json.loads(output["output"])["title"] == "Buy milk"


def test_the_deltas_add_up_to_the_reply(client: TestClient) -> None:
    events = events_of(stream(client, "Add a task to buy milk"))

    done = events[-1].json()
    assert "".join(e.json()["text"] for e in events if e.event == "delta") == done["reply"]
    assert set(done) == {"reply", "session_id", "usage"}
    assert set(done["usage"]) == {"requests", "input_tokens", "output_tokens"}
    assert client.get("/tasks").json()[0]["title"] == "Buy milk"


def test_a_conversation_is_remembered(
    client: TestClient, use_model: Callable[[Model], None]
) -> None:
    model = ScriptedModel([[assistant_message("Noted.")], [assistant_message("Milk.")]])
    use_model(model)
    first = events_of(stream(client, "Remember: I like milk"))[-1].json()

    second = events_of(stream(client, "What do I like?", first["session_id"]))[-1].json()

    assert second["session_id"] == first["session_id"]
    said_before = strings_in(model.calls[1].input)
    assert "Remember: I like milk" in said_before and "Noted." in said_before
    conversation = client.get(f"/agent/sessions/{first['session_id']}").json()
    assert conversation["messages"] == [
        {"role": "user", "content": "Remember: I like milk"},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "What do I like?"},
        {"role": "assistant", "content": "Milk."},
    ]
    model.assert_complete()


def test_the_offline_model_reads_the_conversation(client: TestClient) -> None:
    first = events_of(stream(client, "Add a task to buy milk"))[-1].json()
    [milk] = client.get("/tasks").json()

    events = events_of(stream(client, "Mark it done", first["session_id"]))

    call = next(e.json() for e in events if e.event == "tool_call")
    assert (call["name"], call["arguments"]) == ("complete_task", {"task_id": milk["id"]})
    assert client.get(f"/tasks/{milk['id']}").json()["status"] == "completed"


def test_a_new_conversation_starts_without_a_session_id(client: TestClient) -> None:
    first = events_of(stream(client, "hello"))[-1].json()
    second = events_of(stream(client, "hello"))[-1].json()

    assert first["session_id"] != second["session_id"]


def test_a_failed_run_is_an_error_event_and_not_remembered(
    client: TestClient, use_model: Callable[[Model], None]
) -> None:
    model = ScriptedModel([[assistant_message("Noted.")], ModelBehaviorError("nonsense")])
    use_model(model)
    session_id = events_of(stream(client, "first"))[-1].json()["session_id"]

    events = events_of(stream(client, "second", session_id))

    assert events[-1].event == "error"
    assert events[-1].json() == {"detail": "The model's answer could not be used", "status": 502}
    assert "done" not in [e.event for e in events]
    messages = client.get(f"/agent/sessions/{session_id}").json()["messages"]
    assert [m["content"] for m in messages] == ["first", "Noted."]
    model.assert_complete()


class PausingModel(Model):
    """Answers as `model` does, but its call number `pause_at` waits until `resume()`.

    It notes when it starts waiting and when that wait is cancelled, so that a test can act
    at that moment, and wait for the server to notice a client that left.
    """

    def __init__(self, model: Model, pause_at: int) -> None:
        self.model = model
        self.pause_at = pause_at
        self.calls = 0
        self.waiting = threading.Event()
        self.cancelled = threading.Event()
        self.go: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def resume(self) -> None:
        """Let the paused call go on (called from the test's thread)."""
        assert self.loop is not None and self.go is not None
        self.loop.call_soon_threadsafe(self.go.set)

    async def get_response(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        self.calls += 1
        if self.calls == self.pause_at:
            self.loop, self.go = asyncio.get_running_loop(), asyncio.Event()
            self.waiting.set()
            try:
                await self.go.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        async for event in self.model.stream_response(*args, **kwargs):
            yield event


def test_a_client_that_goes_away_cancels_the_run(
    client: TestClient, use_model: Callable[[Model], None]
) -> None:
    model = PausingModel(OfflineModel(), pause_at=1)
    use_model(model)

    with client.stream("POST", "/agent/chat/stream", json={"message": "hello"}) as response:
        # Keep the reader: dropping it would close the response, and leave too early.
        events = iter_sse(response.iter_lines())
        assert next(events).event == "agent"
        assert model.waiting.wait(timeout=10)  # the model is working when the client leaves

    # Waits for the server to notice, and fails rather than hangs if it never does.
    assert model.cancelled.wait(timeout=10)


def test_a_client_that_goes_away_leaves_no_half_turn(
    client: TestClient, use_model: Callable[[Model], None]
) -> None:
    session_id = events_of(stream(client, "hello"))[-1].json()["session_id"]
    model = PausingModel(OfflineModel(), pause_at=2)  # after the tool call, before the reply
    use_model(model)

    body = {"message": "add a task to buy milk", "session_id": session_id}
    with client.stream("POST", "/agent/chat/stream", json=body) as response:
        events = iter_sse(response.iter_lines())
        assert [next(events).event for _ in range(3)] == ["agent", "tool_call", "tool_output"]
        assert model.waiting.wait(timeout=10)
    assert model.cancelled.wait(timeout=10)

    messages = client.get(f"/agent/sessions/{session_id}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert [task["title"] for task in client.get("/tasks").json()] == ["Buy milk"]


def test_a_conversation_deleted_during_its_turn_ends_the_stream_with_an_error(
    client: TestClient, use_model: Callable[[Model], None]
) -> None:
    session_id = events_of(stream(client, "hello"))[-1].json()["session_id"]
    model = PausingModel(OfflineModel(), pause_at=1)
    use_model(model)

    body = {"message": "what is still pending?", "session_id": session_id}
    with client.stream("POST", "/agent/chat/stream", json=body) as response:
        events = iter_sse(response.iter_lines())
        assert next(events).event == "agent"
        assert model.waiting.wait(timeout=10)
        assert client.delete(f"/agent/sessions/{session_id}").status_code == 204
        model.resume()

        *_, last = events

    detail = f"Conversation {session_id} not found"
    assert (last.event, last.json()) == ("error", {"detail": detail, "status": 404})


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_a_broken_answer_is_an_error_event_and_not_remembered(
    client: TestClient,
    settings: Settings,
    use_provider: Callable[[Settings], None],
    misbehaviour: Misbehaviour,
) -> None:
    session_id = events_of(stream(client, "hello"))[-1].json()["session_id"]
    with run_standin(StandinConfig(misbehave=misbehaviour)) as base_url:
        use_provider(settings.model_copy(update={"agent_model": "m", "openai_base_url": base_url}))

        events = events_of(stream(client, "What do I have to do?", session_id))

    assert [e.event for e in events][-1] == "error"
    assert events[-1].json()["status"] == 502
    messages = client.get(f"/agent/sessions/{session_id}").json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]


# --- conversations belong to their user ---------------------------------------------


@pytest.fixture
def alices_conversation(client: TestClient) -> str:
    return events_of(stream(client, "Add a task to buy milk"))[-1].json()["session_id"]


def test_others_cannot_read_continue_or_delete_a_conversation(
    other_client: TestClient, alices_conversation: str
) -> None:
    detail = {"detail": f"Conversation {alices_conversation} not found"}

    assert other_client.get(f"/agent/sessions/{alices_conversation}").json() == detail
    assert other_client.delete(f"/agent/sessions/{alices_conversation}").status_code == 404
    response = stream(other_client, "What did alice say?", alices_conversation)
    assert (response.status_code, response.json()) == (404, detail)


def test_delete_a_conversation(client: TestClient, alices_conversation: str) -> None:
    assert client.delete(f"/agent/sessions/{alices_conversation}").status_code == 204
    assert client.get(f"/agent/sessions/{alices_conversation}").status_code == 404


def test_an_unknown_conversation_is_404(client: TestClient) -> None:
    assert stream(client, "hello", "no-such-conversation").status_code == 404
    assert client.get("/agent/sessions/no-such-conversation").status_code == 404


@pytest.mark.parametrize("session_id", ["has space", "x" * 65, "semi;colon"])
def test_a_malformed_session_id_is_422(client: TestClient, session_id: str) -> None:
    assert stream(client, "hello", session_id).status_code == 422


@pytest.mark.parametrize("body", [{}, {"message": ""}, {"message": "hi", "extra": 1}])
def test_a_bad_request_is_422_not_a_stream(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/agent/chat/stream", json=body)

    assert response.status_code == 422


def test_the_stream_needs_a_token(anonymous_client: TestClient) -> None:
    assert anonymous_client.post("/agent/chat/stream", json={"message": "hi"}).status_code == 401


def test_the_api_document_says_what_each_route_answers(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    streamed = paths["/agent/chat/stream"]["post"]["responses"]
    assert set(streamed["200"]["content"]) == {"text/event-stream"}
    for status in ["401", "404", "422", "429"]:
        assert set(streamed[status]["content"]) == {"application/json"}, status
    assert not {"502", "504"} & set(streamed)  # a failed run is an `error` event
    assert {"502", "504"} <= set(paths["/agent/chat"]["post"]["responses"])
    for method in ["get", "delete"]:
        answers = paths["/agent/sessions/{session_id}"][method]["responses"]
        assert not {"502", "504"} & set(answers), method


def test_a_conversation_deleted_just_as_its_turn_is_saved_is_not_found(
    engine: Engine, session: Session, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert user.id is not None
    conversations = ConversationStore(session, owner_id=user.id)
    session_id = conversations.save_turn(None, [{"role": "user", "content": "hello"}])
    found = conversations.get

    def found_then_deleted(session_id: str) -> AgentSession:
        conversation = found(session_id)
        with Session(engine) as other:  # another request deletes it, a moment later
            ConversationStore(other, owner_id=user.id).delete(session_id)
        return conversation

    monkeypatch.setattr(conversations, "get", found_then_deleted)

    with pytest.raises(ConversationNotFound):
        conversations.save_turn(session_id, [{"role": "user", "content": "still there?"}])
