"""The service as an operator runs it: uvicorn with two worker processes on PostgreSQL,
driven over HTTP. Each request opens a new connection, so any process may answer it."""

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import POSTGRES_URL
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from course_shared.sse import parse_sse
from task_api.database import create_db_engine, migrate

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs PostgreSQL: set TEST_DATABASE_URL (CI does)"
)
SCHEMA = "end_to_end"  # a schema of its own, apart from the other tests' tables


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    assert POSTGRES_URL is not None
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{SCHEMA}"
    migrate(url)  # as compose.yaml's `migrate` does, once, before the API starts
    yield url
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
    admin.dispose()


@pytest.fixture(scope="module")
def base_url(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    capstone = Path(__file__).resolve().parent.parent
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "end-to-end-Kq3v8ZxRf2mLw9TnB4yHc7DpJs1Ug6",
        "ENVIRONMENT": "production",
        "LOG_LEVEL": "WARNING",
        "OFFLINE_MODEL_DELAY": "0.05",  # a reply streams for a while, as a real model's does
    }
    command = [sys.executable, "-m", "uvicorn", "task_api.main:app", "--app-dir", str(capstone)]
    server = subprocess.Popen(
        [*command, "--port", str(port), "--workers", "2"],
        cwd=tmp_path_factory.mktemp("server"),  # no .env here
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "the server exited"
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server was not ready within 60 s"
            time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_whole_session_over_http(base_url: str) -> None:
    # No keep-alive: every request on a new connection, to whichever process accepts it.
    api = httpx.Client(
        base_url=f"{base_url}/api/v1", limits=httpx.Limits(max_keepalive_connections=0)
    )
    account = {"username": "alice", "password": "correct horse battery staple"}

    assert api.post("/auth/register", json=account).status_code == 201
    token = api.post("/auth/token", data=account).json()["access_token"]
    person = {"Authorization": f"Bearer {token}"}
    created = api.post("/api-keys", json={"name": "end to end"}, headers=person)
    assert created.status_code == 201
    program = {"X-API-Key": created.json()["key"]}

    reply = api.post(
        "/agent/chat/stream", json={"message": "Add a task to buy milk"}, headers=program
    )
    events = parse_sse(reply.text)
    assert [e.json()["name"] for e in events if e.event == "agent"] == ["TaskManager", "Clerk"]
    assert events[-1].event == "done"
    session_id = events[-1].json()["session_id"]

    conversation = api.get(f"/conversations/{session_id}", headers=person).json()
    assert [m["role"] for m in conversation["messages"]] == ["user", "assistant"]
    renamed = api.patch(
        f"/conversations/{session_id}", json={"title": "Groceries"}, headers=program
    )
    assert renamed.json()["title"] == "Groceries"
    assert [c["title"] for c in api.get("/conversations", headers=person).json()] == ["Groceries"]

    tasks = api.get("/tasks", headers=person).json()
    assert [(t["title"], t["status"]) for t in tasks] == [("Buy milk", "pending")]
    second = api.post(
        "/agent/chat",
        json={"message": "Mark it done", "session_id": session_id},
        headers=program,
    ).json()
    assert second["agent"] == "Clerk"
    assert api.get("/tasks", headers=person).json()[0]["status"] == "completed"


def test_a_websocket_chat_against_the_real_server(base_url: str) -> None:
    api = httpx.Client(base_url=f"{base_url}/api/v1")
    account = {"username": "bob", "password": "correct horse battery staple"}
    api.post("/auth/register", json=account).raise_for_status()
    token = api.post("/auth/token", data=account).json()["access_token"]
    socket_url = base_url.replace("http://", "ws://") + "/api/v1/agent/ws"

    with connect(socket_url) as websocket:
        websocket.send(json.dumps({"token": token}))
        websocket.send(json.dumps({"message": "Add a task to buy bread"}))
        events = []
        while not events or events[-1]["event"] not in ("done", "error"):
            events.append(json.loads(websocket.recv(timeout=30)))

    assert events[-1]["event"] == "done"
    assert [e["data"]["name"] for e in events if e["event"] == "agent"] == ["TaskManager", "Clerk"]
    tasks = api.get("/tasks", headers={"Authorization": f"Bearer {token}"}).json()
    assert [task["title"] for task in tasks] == ["Buy bread"]


def test_a_websocket_with_bad_credentials_is_closed_with_1008(base_url: str) -> None:
    socket_url = base_url.replace("http://", "ws://") + "/api/v1/agent/ws"

    with connect(socket_url) as websocket, pytest.raises(ConnectionClosed) as closed:
        websocket.send(json.dumps({"token": "garbage"}))
        websocket.recv(timeout=10)

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_clients_that_vanish_mid_stream_leave_nothing_behind(base_url: str) -> None:
    api = httpx.Client(base_url=f"{base_url}/api/v1")
    account = {"username": "vanishing", "password": "correct horse battery staple"}
    assert api.post("/auth/register", json=account).status_code == 201
    token = api.post("/auth/token", data=account).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    body = {"message": "Add a task to buy milk"}
    socket_url = base_url.replace("http://", "ws://") + "/api/v1/agent/ws"

    # More clients than the two processes' connection pools hold (2 x 20): were a run to keep
    # its database connection after its client left, the later requests would wait in vain.
    for n in range(45):
        if n % 2:
            with httpx.stream(
                "POST", f"{base_url}/api/v1/agent/chat/stream", json=body, headers=headers
            ) as reply:
                lines = reply.iter_lines()
                while next(lines) != "event: delta":  # the reply has begun ...
                    pass
        else:
            with connect(socket_url) as websocket:
                websocket.send(json.dumps({"token": token}))
                websocket.send(json.dumps(body))
                while json.loads(websocket.recv(timeout=30))["event"] != "delta":
                    pass
                websocket.close_socket()  # gone, without a closing handshake
        # ... and the client is gone: each run is cancelled, and keeps no half turn.

    # The service goes on; by the time this chat is done, a run that had not been cancelled
    # would have finished and saved its turn too.
    reply = api.post("/agent/chat/stream", json={"message": "What is pending?"}, headers=headers)
    assert parse_sse(reply.text)[-1].event == "done"
    assert len(api.get("/conversations", headers=headers).json()) == 1  # this chat's only
    # The tool calls that finished before the client left stay done, as for any failed run.
    assert {t["title"] for t in api.get("/tasks", headers=headers).json()} == {"Buy milk"}
    assert httpx.get(f"{base_url}/ready").status_code == 200
