"""One user against the others, from outside: the service started as the README says
(`uvicorn task_api.main:app`), driven by real clients over HTTP, SSE and WebSocket.

The checks inside the app (test_events.py, test_chat_ws.py, test_runs.py, ...) show each
guard and fail without it; these show that the service a client reaches holds them.
"""

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from conftest import POSTGRES_URL, REDIS_URL
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from task_api.database import create_db_engine, migrate

CAPSTONE = Path(__file__).resolve().parent.parent
SCHEMA = "hostile"  # on PostgreSQL, a schema of its own


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SlowReceiver(BaseHTTPRequestHandler):
    """A webhook receiver that answers only once the test lets it."""

    answer: ClassVar[threading.Event] = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        SlowReceiver.answer.wait(timeout=60)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'tasks.db'}"
        return
    if POSTGRES_URL is None:
        pytest.skip("PostgreSQL: set TEST_DATABASE_URL (CI does)")
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{SCHEMA}"
    migrate(url)
    yield url
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
    admin.dispose()


@pytest.fixture(scope="module")
def server(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, own_redis_prefix: str
) -> Iterator[Any]:
    """The service, and what it logs."""
    port = free_port()
    log = tmp_path_factory.mktemp("log") / "server.log"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        # On PostgreSQL with Redis, as an operator runs it, with keys of its own.
        **(
            {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": own_redis_prefix}
            if REDIS_URL and "postgresql" in database_url
            else {}
        ),
        "RATE_LIMIT_API": "119/minute",
        "MAX_QUEUED_RUNS_PER_USER": "3",
        "OFFLINE_MODEL_DELAY": "0.05",  # a run takes a while, as with a real model
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "INFO",
        "WORKER_CONCURRENCY": "1",  # one run slot: a slow webhook must not take it
        "WEBHOOK_SECRET": "s3cret",
        "WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on 127.0.0.1
    }
    command = [sys.executable, "-m", "uvicorn", "task_api.main:app", "--app-dir", str(CAPSTONE)]
    with log.open("w") as output:
        process = subprocess.Popen(
            # Behind a proxy at 127.0.0.1 (X-Forwarded-For), as "Before production" says.
            [*command, "--port", str(port), "--forwarded-allow-ips", "127.0.0.1"],
            cwd=tmp_path_factory.mktemp("server"),  # no .env here
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the server exited"
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server was not ready within 60 s"
            time.sleep(0.1)
        yield type("Server", (), {"url": url, "log": log})
    finally:
        process.terminate()
        process.wait(timeout=30)


def an_address() -> str:
    """A client address of this run's own: in a Redis other runs share, counters per address
    from earlier runs do not reach it (198.18.0.0/15: set aside for tests)."""
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def user(server: Any, name: str) -> httpx.Client:
    """A user of their own, signed up and logged in from an address of their own (the limits
    on registering and logging in count per address)."""
    address = {"X-Forwarded-For": an_address()}
    api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)
    account = {"username": name, "password": "correct horse battery staple"}
    assert api.post("/auth/register", json=account, headers=address).status_code == 201
    token = api.post("/auth/token", data=account, headers=address).json()["access_token"]
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def test_one_user_cannot_hold_every_stream_open(server: Any) -> None:
    alice, bob = user(server, "alice-streams"), user(server, "bob-streams")

    with ExitStack() as held:
        statuses = [
            held.enter_context(alice.stream("GET", "/tasks/events")).status_code for _ in range(12)
        ]
        with bob.stream("GET", "/tasks/events") as bobs:  # bob's are his own to open
            bob_status = bobs.status_code
        bob_tasks = bob.get("/tasks").status_code

    assert statuses == [200] * 10 + [429] * 2  # MAX_OPEN_PER_USER: 10
    assert (bob_status, bob_tasks) == (200, 200)


def test_a_websocket_that_never_logs_in_is_closed(server: Any) -> None:
    socket_url = server.url.replace("http://", "ws://") + "/api/v1/agent/ws"

    with connect(socket_url) as websocket, pytest.raises(ConnectionClosed) as closed:
        websocket.recv(timeout=30)  # not a word from the client

    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_no_credential_in_a_url_reaches_the_log(server: Any) -> None:
    socket_url = server.url.replace("http://", "ws://") + "/api/v1/agent/ws"

    with connect(f"{socket_url}?api_key=tm_leaked_in_a_url") as websocket:
        websocket.send(json.dumps({"message": "hello"}))  # no credentials: closed
        with pytest.raises(ConnectionClosed):
            websocket.recv(timeout=30)

    logged = server.log.read_text()
    assert "/api/v1/agent/ws" in logged  # uvicorn logged the handshake ...
    assert "tm_leaked_in_a_url" not in logged  # ... without its query string


def test_a_read_only_key_changes_nothing_and_no_key_manages_keys(server: Any) -> None:
    alice = user(server, "alice-keys")
    made = alice.post("/api-keys", json={"name": "dashboard", "scopes": ["read"]}).json()
    program = httpx.Client(
        base_url=f"{server.url}/api/v1", headers={"X-API-Key": made["key"]}, timeout=30
    )

    assert program.get("/tasks").status_code == 200
    assert program.post("/tasks", json={"title": "Sneaked in"}).status_code == 403
    assert program.post("/api-keys", json={"name": "backdoor"}).status_code == 403
    assert alice.get("/tasks").json() == []
    assert [key["name"] for key in alice.get("/api-keys").json()] == ["dashboard"]


def test_a_slow_webhook_receiver_keeps_no_other_run_waiting(server: Any) -> None:
    receiver = HTTPServer(("127.0.0.1", 0), SlowReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    SlowReceiver.answer.clear()
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    alice, bob = user(server, "alice-hook"), user(server, "bob-hook")
    try:
        slow = alice.post("/runs", json={"message": "hello", "webhook_url": hook}).json()
        assert alice.get(f"/runs/{slow['id']}/result", params={"wait": 30}).status_code == 200

        bobs = bob.post("/runs", json={"message": "hello"}).json()  # the only slot: free?
        result = bob.get(f"/runs/{bobs['id']}/result", params={"wait": 30})

        assert (result.status_code, result.json()["status"]) == (200, "succeeded")
        assert alice.get(f"/runs/{slow['id']}").json()["webhook_attempts"] == []  # still out
    finally:
        SlowReceiver.answer.set()
        receiver.shutdown()


def test_a_strangers_guesses_do_not_lock_the_user_out(server: Any) -> None:
    name = f"alice-{secrets.token_hex(4)}"  # in a shared Redis, a name of this run's own
    account = {"username": name, "password": "correct horse battery staple"}
    api = httpx.Client(base_url=f"{server.url}/api/v1", timeout=30)
    home, elsewhere = an_address(), an_address()
    assert (
        api.post("/auth/register", json=account, headers={"X-Forwarded-For": home}).status_code
        == 201
    )

    def log_in(password: str, address: str) -> int:
        form = {**account, "password": password}
        return api.post("/auth/token", data=form, headers={"X-Forwarded-For": address}).status_code

    assert log_in(account["password"], home) == 200  # alice, at home
    guesses = [log_in("wrong guess", an_address()) for _ in range(5)]  # a stranger
    assert guesses == [401] * 5
    assert log_in(account["password"], elsewhere) == 429  # the guessing stops there
    assert log_in(account["password"], home) == 200  # alice gets in at home


def test_the_queue_is_fair_and_capped_per_user(server: Any) -> None:
    alice, bob = user(server, "alice-queue"), user(server, "bob-queue")
    long = alice.post("/runs", json={"message": "Plan my week"}).json()  # takes the one slot
    deadline = time.monotonic() + 30
    while alice.get(f"/runs/{long['id']}").json()["status"] != "running":
        assert time.monotonic() < deadline, "the first run never started"
        time.sleep(0.05)

    hers = [alice.post("/runs", json={"message": "hi", "priority": "high"}) for _ in range(4)]
    his = bob.post("/runs", json={"message": "hi"}).json()  # later, and normal

    assert [reply.status_code for reply in hers] == [202, 202, 202, 429]  # 3 may wait
    assert bob.get(f"/runs/{his['id']}/result", params={"wait": 60}).status_code == 200
    for reply in hers[:3]:
        alice.get(f"/runs/{reply.json()['id']}/result", params={"wait": 60})
    started = {
        run["id"]: run["started_at"] for run in alice.get("/runs").json() + bob.get("/runs").json()
    }
    assert all(started[his["id"]] < started[reply.json()["id"]] for reply in hers[:3])


def test_what_a_client_sends_wrong_costs_little_and_says_why(server: Any) -> None:
    alice = user(server, "alice-wrong")

    fields = alice.post("/tasks", json={"title": "x", **{f"f{n}": n for n in range(60_000)}})
    forged_host = httpx.get(f"{server.url}/health", headers={"Host": "evil.example"})
    run = alice.post("/runs", json={"message": "Mark task 41 done"}).json()
    failed = alice.get(f"/runs/{run['id']}/result", params={"wait": 30}).json()
    again = alice.post(f"/runs/{run['id']}/cancel")

    assert (fields.status_code, len(fields.json()["detail"])) == (422, 1)
    assert forged_host.status_code == 400  # only ALLOWED_HOSTS
    assert (failed["status"], failed["detail"]) == (
        "failed",
        "Every tool call failed: complete_task: Task 41 not found",
    )
    assert again.status_code == 409  # it had finished


def test_a_token_is_never_cached(server: Any) -> None:
    account = {"username": "alice-cache", "password": "correct horse battery staple"}
    address = {"X-Forwarded-For": an_address()}
    httpx.post(f"{server.url}/api/v1/auth/register", json=account, headers=address)

    response = httpx.post(f"{server.url}/api/v1/auth/token", data=account, headers=address)

    assert response.headers["Cache-Control"] == "no-store"
