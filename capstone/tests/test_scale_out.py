"""Two API processes behind one address: nothing one knows, the other misses.

Live events pass from one process to the other through PostgreSQL (LISTEN/NOTIFY), or
through Redis with REDIS_URL; with REDIS_URL, a rate limit spent on one is spent on both.
"""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import POSTGRES_URL, REDIS_URL

from course_shared.sse import iter_sse
from task_api.database import create_db_engine, migrate

CAPSTONE = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs PostgreSQL: set TEST_DATABASE_URL (CI does)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    assert POSTGRES_URL is not None
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA IF EXISTS scale_out CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA scale_out")
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3Dscale_out"
    migrate(url)
    yield url
    with admin.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA scale_out CASCADE")
    admin.dispose()


Pair = tuple[httpx.Client, httpx.Client]


@pytest.fixture(
    scope="module",
    params=[
        "postgresql",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(REDIS_URL is None, reason="needs Redis: set TEST_REDIS_URL"),
        ),
    ],
)
def two_processes(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    own_redis_prefix: str,
) -> Iterator[Pair]:
    """Two API processes on one database, sharing events through `request.param`."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(CAPSTONE),
        "DATABASE_URL": database_url,
        "SECRET_KEY": "scale-out-" + "k" * 32,
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_API": "100000/minute",
    }
    if request.param == "redis":
        assert REDIS_URL is not None
        environment["REDIS_URL"] = REDIS_URL
        environment["REDIS_PREFIX"] = own_redis_prefix
    ports = [free_port(), free_port()]
    folder = tmp_path_factory.mktemp(request.param)
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "task_api.main:app", "--port", str(port)],
            cwd=folder,
            env=environment,
        )
        for port in ports
    ]
    clients = [
        httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) for port in ports
    ]
    try:
        for port, server in zip(ports, servers, strict=True):
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, "a server exited"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "a server did not start"
                time.sleep(0.1)
        account = {"username": f"alice-{request.param}", "password": "correct horse battery"}
        clients[0].post("/auth/register", json=account).raise_for_status()
        token = clients[1].post("/auth/token", data=account).json()["access_token"]
        for client in clients:
            client.headers["Authorization"] = f"Bearer {token}"
        yield clients[0], clients[1]
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
        for client in clients:
            client.close()


def test_a_task_made_through_one_process_is_streamed_by_the_other(two_processes: Pair) -> None:
    listener, writer = two_processes

    with listener.stream("GET", "/tasks/events") as response:  # open: the stream has begun
        writer.post("/tasks", json={"title": "Made elsewhere"}).raise_for_status()

        first = next(iter_sse(response.iter_lines()))

    assert (first.event, first.json()["title"]) == ("task.created", "Made elsewhere")


def test_a_run_queued_on_one_process_is_followed_live_on_the_other(two_processes: Pair) -> None:
    first, second = two_processes
    run_id = first.post("/runs", json={"message": "Plan a party"}).json()["id"]

    with second.stream("GET", f"/runs/{run_id}/events") as response:
        events = list(iter_sse(response.iter_lines()))

    assert events[-1].event == "status"
    assert events[-1].json()["status"] == "succeeded"


def test_a_chat_paused_on_one_process_goes_on_in_the_other(two_processes: Pair) -> None:
    first, second = two_processes
    task = first.post("/tasks", json={"title": "Old task"}).json()
    paused = first.post("/agent/chat", json={"message": f"delete task {task['id']}"})
    assert paused.status_code == 202
    approval_id = paused.json()["approvals"][0]["id"]

    with second.stream("POST", f"/approvals/{approval_id}", json={"approve": True}) as response:
        events = list(iter_sse(response.iter_lines()))

    assert events[-1].event == "done"
    assert events[-1].json()["reply"] == f"Deleted task {task['id']}."
    assert first.get(f"/tasks/{task['id']}").status_code == 404


def test_a_run_waiting_for_approval_is_approved_through_the_other(two_processes: Pair) -> None:
    first, second = two_processes
    task = first.post("/tasks", json={"title": "Another old task"}).json()
    run_id = first.post("/runs", json={"message": f"delete task {task['id']}"}).json()["id"]
    waiting = first.get(f"/runs/{run_id}/result", params={"wait": 30}).json()
    assert waiting["status"] == "awaiting_approval"
    [approval] = [a for a in second.get("/approvals").json() if a["run_id"] == run_id]

    assert second.post(f"/approvals/{approval['id']}", json={"approve": True}).status_code == 202

    with first.stream("GET", f"/runs/{run_id}/events") as response:
        events = list(iter_sse(response.iter_lines()))
    statuses = [event.json()["status"] for event in events if event.event == "status"]
    assert statuses == ["awaiting_approval", "queued", "succeeded"]
    assert second.get(f"/tasks/{task['id']}").status_code == 404


@pytest.mark.skipif(REDIS_URL is None, reason="needs Redis: set TEST_REDIS_URL")
def test_with_redis_a_limit_spent_on_one_process_is_spent_on_the_other(
    two_processes: Pair, request: pytest.FixtureRequest
) -> None:
    if "redis" not in request.node.callspec.id:
        pytest.skip("without REDIS_URL, each process counts its own requests (see the README)")
    first, second = two_processes

    def guess(client: httpx.Client, number: int) -> int:
        # Another username each time: only the per-address limit (RATE_LIMIT_LOGIN) counts.
        form = {"username": f"nobody{number}", "password": "wrong guess"}
        return client.post("/auth/token", data=form).status_code

    tries = 0
    while guess(first, tries) != 429:
        tries += 1
        assert tries <= 10, "the login limit never held"

    assert guess(second, 99) == 429
