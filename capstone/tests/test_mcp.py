"""/mcp from outside: the official `mcp` client and an Agents SDK agent, against the capstone
served as the README says (SQLite, the offline model)."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from agents import Agent, Runner
from agents.mcp import MCPServerStreamableHttp
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from course_shared.offline_model import OfflineModel
from course_shared.sse import iter_sse

CAPSTONE = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(CAPSTONE),
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_REGISTER": "1000/hour",
        "RATE_LIMIT_LOGIN": "1000/minute",
        "RATE_LIMIT_API": "40/minute",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "task_api.main:app", "--port", str(port)],
        cwd=tmp_path_factory.mktemp("mcp"),
        env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the server exited"
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


counter = iter(range(1_000_000))


def sign_up(server: str) -> httpx.Client:
    """A new user's client of the REST API, logged in."""
    api = httpx.Client(base_url=f"{server}/api/v1", timeout=30)
    account = {"username": f"mcp_user_{next(counter)}", "password": "a long password"}
    api.post("/auth/register", json=account).raise_for_status()
    token = api.post("/auth/token", data=account).json()["access_token"]
    api.headers["Authorization"] = f"Bearer {token}"
    return api


def token_of(api: httpx.Client) -> str:
    return api.headers["Authorization"].removeprefix("Bearer ")


@asynccontextmanager
async def mcp_session(server: str, credential: str | None) -> AsyncIterator[ClientSession]:
    """The official client, as an IDE's assistant connects: the URL, and one header."""
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(f"{server}/mcp", http_client=http) as (read, write, *_),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def call(server: str, credential: str | None, tool: str, **arguments: Any) -> tuple[bool, Any]:
    """(whether it failed, its answer as JSON) for one tool call."""

    async def calling() -> tuple[bool, Any]:
        async with mcp_session(server, credential) as session:
            result = await session.call_tool(tool, arguments)
        return bool(result.is_error), json.loads(result.content[0].text)  # type: ignore[union-attr]

    return asyncio.run(calling())


def tools_of(server: str, credential: str) -> dict[str, Any]:
    async def listing() -> dict[str, Any]:
        async with mcp_session(server, credential) as session:
            return {tool.name: tool for tool in (await session.list_tools()).tools}

    return asyncio.run(listing())


NEW = {"description": None, "priority": "medium", "due_date": None}


def test_the_tools_are_the_agents_with_their_schemas_and_annotations(server: str) -> None:
    api = sign_up(server)

    tools = tools_of(server, token_of(api))

    clerk = next(
        a for a in api.get("/agent/capabilities").json()["agents"] if a["name"] == "Clerk"
    )
    agents_tools = {t["name"]: t for t in clerk["tools"] if not t["only_in_background_runs"]}
    assert set(tools) == set(agents_tools)
    for name, tool in tools.items():
        assert tool.input_schema == agents_tools[name]["parameters"]
        assert tool.description == agents_tools[name]["description"]
    assert tools["list_tasks"].annotations.read_only_hint is True
    assert tools["delete_task"].annotations.destructive_hint is True
    assert tools["create_task"].annotations.destructive_hint is False


def test_each_tool_works_on_the_callers_tasks(server: str) -> None:
    api = sign_up(server)
    token = token_of(api)

    failed, made = call(server, token, "create_task", title="Write the report", **NEW)
    assert not failed and made["title"] == "Write the report"
    task_id = made["id"]
    assert api.get(f"/tasks/{task_id}").json()["title"] == "Write the report"
    assert call(server, token, "list_tasks", status=None, priority=None)[1] == [made]
    assert call(server, token, "get_task", task_id=task_id)[1] == made
    changes = {"title": None, "description": None, "status": None, "due_date": None}
    _, changed = call(server, token, "update_task", task_id=task_id, **changes, priority="high")
    assert changed["priority"] == "high"
    assert call(server, token, "complete_task", task_id=task_id)[1]["status"] == "completed"
    assert call(server, token, "delete_task", task_id=task_id) == (False, {"deleted": task_id})
    assert api.get(f"/tasks/{task_id}").status_code == 404


def test_a_change_through_mcp_reaches_the_task_stream(server: str) -> None:
    api = sign_up(server)

    with api.stream("GET", "/tasks/events") as events:
        call(server, token_of(api), "create_task", title="Seen live", **NEW)
        first = next(iter_sse(events.iter_lines()))

    assert (first.event, first.json()["title"]) == ("task.created", "Seen live")


def test_another_users_task_is_not_found(server: str) -> None:
    alice, bob = sign_up(server), sign_up(server)
    secret = alice.post("/tasks", json={"title": "Alice's"}).json()

    for tool in ("get_task", "complete_task", "delete_task"):
        failed, answer = call(server, token_of(bob), tool, task_id=secret["id"])
        assert failed
        assert answer == {"error": f"Task {secret['id']} not found"}
    assert call(server, token_of(bob), "list_tasks", status=None, priority=None)[1] == []
    assert alice.get(f"/tasks/{secret['id']}").json() == secret


def test_no_argument_names_a_user(server: str) -> None:
    alice, bob = sign_up(server), sign_up(server)
    secret = alice.post("/tasks", json={"title": "Alice's"}).json()
    alice_id = alice.get("/users/me").json()["id"]

    failed, answer = call(
        server, token_of(bob), "delete_task", task_id=secret["id"], user_id=alice_id
    )

    assert failed
    assert "'user_id' was unexpected" in answer["error"]
    assert alice.get(f"/tasks/{secret['id']}").status_code == 200


def test_bad_arguments_are_a_clear_tool_error(server: str) -> None:
    token = token_of(sign_up(server))

    failed, answer = call(server, token, "create_task", title=None, **NEW)

    assert failed
    assert answer == {
        "error": "Invalid arguments for create_task: title: None is not of type 'string'"
    }
    assert call(server, token, "no_such_tool")[1] == {
        "error": "There is no tool called 'no_such_tool'"
    }


def test_a_read_only_key_sees_and_calls_only_what_reads(server: str) -> None:
    api = sign_up(server)
    task = api.post("/tasks", json={"title": "Keep me"}).json()
    key = api.post("/api-keys", json={"name": "reader", "scopes": ["read"]}).json()["key"]

    assert set(tools_of(server, key)) == {"list_tasks", "get_task"}
    failed, found = call(server, key, "get_task", task_id=task["id"])
    assert (failed, found["title"]) == (False, "Keep me")
    failed, answer = call(server, key, "delete_task", task_id=task["id"])

    assert failed
    assert answer == {"error": "This API key lacks the write scope that delete_task needs"}
    assert api.get(f"/tasks/{task['id']}").status_code == 200


def test_a_key_with_write_works_and_a_revoked_one_is_refused(server: str) -> None:
    api = sign_up(server)
    created = api.post("/api-keys", json={"name": "ide", "scopes": ["read", "write"]}).json()
    assert call(server, created["key"], "create_task", title="By key", **NEW)[0] is False

    api.delete(f"/api-keys/{created['id']}").raise_for_status()

    refused = httpx.post(f"{server}/mcp", headers={"Authorization": f"Bearer {created['key']}"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == "Bearer"
    assert refused.json()["detail"] == "Could not validate credentials"
    with pytest.raises(ExceptionGroup) as refused_by_client:  # the official client gives up
        call(server, created["key"], "list_tasks", status=None, priority=None)
    assert "Server returned an error response" in str(refused_by_client.value.exceptions)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic YWxpY2U6cHc="},
        {"X-API-Key": "tm_x"},
    ],
)
def test_without_a_bearer_credential_it_is_401(server: str, headers: dict[str, str]) -> None:
    response = httpx.post(f"{server}/mcp", headers=headers, json={})

    assert response.status_code == 401
    assert response.json()["detail"] == "Send Authorization: Bearer <login token or API key>"
    assert response.headers["X-Request-ID"]


def test_mcp_calls_count_against_the_rate_limit(server: str) -> None:
    token = token_of(sign_up(server))  # RATE_LIMIT_API is 40/minute here
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json, text/event-stream"}

    codes = [
        httpx.post(f"{server}/mcp", headers=headers, json=body).status_code for _ in range(45)
    ]

    assert codes.count(429) >= 5
    assert set(codes) <= {200, 429}


def test_an_agent_manages_tasks_through_it(server: str) -> None:
    api = sign_up(server)

    async def ask(message: str) -> str:
        params = {
            "url": f"{server}/mcp",
            "headers": {"Authorization": api.headers["Authorization"]},
        }
        async with MCPServerStreamableHttp(params=params, name="TaskManager") as tasks:  # type: ignore[arg-type]
            agent = Agent(name="Assistant", model=OfflineModel(), mcp_servers=[tasks])
            result = await Runner.run(agent, message)
        return str(result.final_output)

    added = asyncio.run(ask("Add a task to book the dentist"))
    [task] = api.get("/tasks").json()
    assert task["title"] == "Book the dentist"
    assert added.startswith(f'Added task {task["id"]} "Book the dentist"')
    completed = asyncio.run(ask(f"complete task {task['id']}"))
    assert completed == f'Marked task {task["id"]} "Book the dentist" as completed.'
    assert api.get(f"/tasks/{task['id']}").json()["status"] == "completed"
