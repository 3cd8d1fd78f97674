"""WS /api/v1/agent/ws: the streamed chat over a WebSocket."""

from collections.abc import Callable
from typing import Any

import pytest
from agents import Model
from conftest import PausingModel, bearer
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from course_shared.offline_model import OfflineModel
from task_api.agents.provider import OFFLINE_ROUTES
from task_api.config import Settings
from task_api.models import User

URL = "/api/v1/agent/ws"
UseModel = Callable[[Model], None]


def token_of(user: User, settings: Settings) -> str:
    return bearer(user, settings)["Authorization"].removeprefix("Bearer ")


def turn(websocket: Any, message: str, **options: Any) -> list[dict[str, Any]]:
    """Send a turn; every event until its `done` or `error`."""
    websocket.send_json({"message": message, **options})
    events = []
    while True:
        events.append(websocket.receive_json())
        if events[-1]["event"] in ("done", "error"):
            return events


def log_in(websocket: Any, **credentials: str) -> Any:
    """The first message: the credentials (never in the URL)."""
    websocket.send_json(credentials)
    return websocket


def closed_with(websocket: Any) -> int:
    with pytest.raises(WebSocketDisconnect) as closed:
        websocket.receive_json()
    return closed.value.code


def test_a_turn_streams_the_same_events_as_the_sse_route(
    service_client: TestClient, user: User, settings: Settings
) -> None:
    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, token=token_of(user, settings))
        events = turn(websocket, "Add a task to buy milk")

    names = [e["event"] for e in events]
    assert names[:4] == ["agent", "agent", "tool_call", "tool_output"]
    assert [e["data"]["name"] for e in events if e["event"] == "agent"] == ["TaskManager", "Clerk"]
    assert names[-1] == "done"
    done = events[-1]["data"]
    assert "".join(e["data"]["text"] for e in events if e["event"] == "delta") == done["reply"]


def test_many_turns_on_one_connection_share_the_conversation(
    service_client: TestClient, client: TestClient, user: User, settings: Settings
) -> None:
    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, token=token_of(user, settings))
        first = turn(websocket, "Add a task to buy milk")[-1]["data"]
        second = turn(websocket, "Mark it done")[-1]["data"]

    assert second["session_id"] == first["session_id"]
    assert client.get("/tasks").json()[0]["status"] == "completed"


def test_an_api_key_in_the_first_message_logs_in(
    service_client: TestClient, client: TestClient
) -> None:
    key = client.post("/api-keys", json={"name": "ws"}).json()["key"]

    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, api_key=key)
        events = turn(websocket, "What is still pending?")

    assert events[-1]["event"] == "done"


@pytest.mark.parametrize(
    "first",
    [
        {"token": "garbage"},
        {"token": ""},
        {"api_key": "tm_made_up"},
        {"api_key": "tm_" + "\x00" * 43},  # refused before it reaches a query
        {"token": 42},
        {"message": "hello"},  # a turn, before any credentials
    ],
)
def test_bad_credentials_close_with_1008(service_client: TestClient, first: Any) -> None:
    with service_client.websocket_connect(URL) as websocket:
        websocket.send_json(first)
        assert closed_with(websocket) == 1008


def test_a_token_in_the_url_is_not_read(
    service_client: TestClient, user: User, settings: Settings
) -> None:
    with service_client.websocket_connect(f"{URL}?token={token_of(user, settings)}") as websocket:
        websocket.send_json({"message": "hello"})
        assert closed_with(websocket) == 1008


def test_a_revoked_key_ends_the_connection_before_the_next_turn(
    service_client: TestClient, client: TestClient
) -> None:
    key = client.post("/api-keys", json={"name": "ws"}).json()

    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, api_key=key["key"])
        assert turn(websocket, "hello")[-1]["event"] == "done"
        client.delete(f"/api-keys/{key['id']}")
        websocket.send_json({"message": "What is still pending?"})
        assert closed_with(websocket) == 1008


def test_a_revoked_key_ends_an_idle_connection(
    service_client: TestClient, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("task_api.chat_ws.CREDENTIALS_RECHECK_SECONDS", 0.05)
    key = client.post("/api-keys", json={"name": "ws"}).json()

    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, api_key=key["key"])
        assert turn(websocket, "hello")[-1]["event"] == "done"
        client.delete(f"/api-keys/{key['id']}")
        assert closed_with(websocket) == 1008  # without a word from the client


@pytest.mark.parametrize(
    ("send", "code"),
    [
        (lambda ws: ws.send_bytes(b"\x00\x01"), 1003),
        (lambda ws: ws.send_text("not json"), 1007),
        (lambda ws: ws.send_text("[1, 2]"), 1007),
        (lambda ws: ws.send_json({"message": ""}), 1007),
        (lambda ws: ws.send_json({"message": "hi", "temperature": 9}), 1007),
        (lambda ws: ws.send_json({"message": "hi", "session_id": "has space"}), 1007),
    ],
)
def test_a_bad_message_closes_with_its_code(
    service_client: TestClient, user: User, settings: Settings, send: Any, code: int
) -> None:
    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, token=token_of(user, settings))
        send(websocket)
        assert closed_with(websocket) == code


def test_someone_elses_conversation_is_an_error_event(
    service_client: TestClient, client: TestClient, other_client: TestClient, settings: Settings
) -> None:
    alices = client.post("/agent/chat", json={"message": "hello"}).json()["session_id"]
    bob = other_client.get("/users/me").json()

    with service_client.websocket_connect(URL) as websocket:
        log_in(
            websocket,
            token=token_of(User(id=bob["id"], username="bob", hashed_password=""), settings),
        )
        events = turn(websocket, "What did alice say?", session_id=alices)

    assert events == [
        {"event": "error", "data": {"detail": f"Conversation {alices} not found", "status": 404}}
    ]


def test_a_client_that_goes_away_cancels_its_turn(
    service_client: TestClient, user: User, settings: Settings, use_model: UseModel
) -> None:
    model = PausingModel(OfflineModel(routes=OFFLINE_ROUTES), pause_at=1)
    use_model(model)

    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, token=token_of(user, settings))
        websocket.send_json({"message": "hello"})
        assert websocket.receive_json()["event"] == "agent"
        assert model.waiting.wait(timeout=10)

    assert model.cancelled.wait(timeout=10)


def test_a_turn_counts_against_the_api_limit(
    fresh_app: FastAPI, service_client: TestClient, user: User, settings: Settings
) -> None:
    from task_api.rate_limit import RateLimits

    fresh_app.state.rate_limits = RateLimits(
        settings.model_copy(update={"rate_limit_api": "1/minute"})
    )

    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, token=token_of(user, settings))
        assert turn(websocket, "hello")[-1]["event"] == "done"
        refused = turn(websocket, "hello again")

    assert refused[-1]["event"] == "error"
    assert refused[-1]["data"]["status"] == 429


def test_a_socket_that_never_logs_in_is_closed(
    service_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("task_api.chat_ws.CREDENTIALS_WITHIN_SECONDS", 0.05)

    with service_client.websocket_connect(URL) as websocket:
        assert closed_with(websocket) == 1008  # without a word from the client


def test_a_user_may_hold_only_so_many_sockets_open(
    fresh_app: FastAPI, service_client: TestClient, user: User, settings: Settings
) -> None:
    from task_api.rate_limit import RateLimits

    fresh_app.state.rate_limits = RateLimits(settings.model_copy(update={"max_open_per_user": 1}))
    token = token_of(user, settings)

    with service_client.websocket_connect(URL) as first:
        assert turn(log_in(first, token=token), "hello")[-1]["event"] == "done"
        with service_client.websocket_connect(URL) as second:
            log_in(second, token=token)
            assert closed_with(second) == 1013  # try again later
        assert turn(first, "hello again")[-1]["event"] == "done"


def test_a_key_without_the_agent_scope_is_closed(
    service_client: TestClient, client: TestClient
) -> None:
    key = client.post("/api-keys", json={"name": "reader", "scopes": ["read"]}).json()["key"]

    with service_client.websocket_connect(URL) as websocket:
        log_in(websocket, api_key=key)
        websocket.send_json({"message": "Delete task 1"})
        assert closed_with(websocket) == 1008
