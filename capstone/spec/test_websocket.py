"""The chat over a WebSocket: credentials in the first message, then a turn per message."""

import json
from typing import Any

import pytest
from conftest import User
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.websocket


def ws_url(base_url: str) -> str:
    return base_url.replace("http", "ws", 1) + "/api/v1/agent/ws"


def turn(socket: ClientConnection, message: str, **fields: Any) -> list[dict[str, Any]]:
    socket.send(json.dumps({"message": message, **fields}))
    events = []
    while not events or events[-1]["event"] not in ("done", "error"):
        events.append(json.loads(socket.recv(timeout=30)))
    return events


def test_turns_on_one_connection_continue_one_conversation(alice: User, base_url: str) -> None:
    with connect(ws_url(base_url)) as socket:
        socket.send(json.dumps({"token": alice.token}))
        first = turn(socket, "Add a task to fix the bike")
        second = turn(socket, "What are my tasks?")

    assert first[-1]["event"] == second[-1]["event"] == "done"
    assert first[-1]["data"]["session_id"] == second[-1]["data"]["session_id"]
    assert "delta" in [event["event"] for event in first]


def test_a_socket_without_credentials_is_closed_1008(base_url: str) -> None:
    with connect(ws_url(base_url)) as socket:
        socket.send(json.dumps({"message": "hi"}))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=30)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
