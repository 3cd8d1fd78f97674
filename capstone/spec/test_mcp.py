"""MCP: the Task tools at /mcp (Streamable HTTP) for any MCP client, on the caller's tasks,
with an API key's scopes."""

import asyncio
import json
from typing import Any

import httpx
import httpx2
import pytest
from conftest import User
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

pytestmark = pytest.mark.mcp

EMPTY = {"description": None, "priority": "medium", "due_date": None}


def mcp(base_url: str, credential: str, tool: str | None = None, **arguments: Any) -> Any:
    """The tools' names (with `tool` None), or (whether it failed, its answer) for a call."""

    async def talk() -> Any:
        headers = {"Authorization": f"Bearer {credential}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=30) as http,
            streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write, *_),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            if tool is None:
                return {t.name for t in (await session.list_tools()).tools}
            result = await session.call_tool(tool, arguments)
            return bool(result.is_error), json.loads(result.content[0].text)  # type: ignore[union-attr]

    return asyncio.run(talk())


def test_the_task_tools_are_listed_and_called_as_the_caller(alice: User, base_url: str) -> None:
    assert mcp(base_url, alice.token) >= {
        "list_tasks", "get_task", "create_task", "update_task", "complete_task", "delete_task"
    }  # fmt: skip

    failed, made = mcp(base_url, alice.token, "create_task", title="Made over MCP", **EMPTY)

    assert not failed
    assert alice.api.get(f"/tasks/{made['id']}").json()["title"] == "Made over MCP"
    assert mcp(base_url, alice.token, "delete_task", task_id=made["id"])[0] is False
    assert alice.api.get(f"/tasks/{made['id']}").status_code == 404


def test_another_users_task_is_not_found(alice: User, bob: User, base_url: str) -> None:
    task = alice.api.post("/tasks", json={"title": "Alice's own"}).json()

    failed, answer = mcp(base_url, bob.token, "delete_task", task_id=task["id"])

    assert failed and "not found" in answer["error"]
    assert alice.api.get(f"/tasks/{task['id']}").status_code == 200


def test_a_read_only_key_cannot_destroy(alice: User, base_url: str) -> None:
    task = alice.api.post("/tasks", json={"title": "Read, not deleted"}).json()
    key = alice.api.post("/api-keys", json={"name": "viewer", "scopes": ["read"]}).json()["key"]

    assert "delete_task" not in mcp(base_url, key)
    assert mcp(base_url, key, "delete_task", task_id=task["id"])[0] is True
    assert alice.api.get(f"/tasks/{task['id']}").status_code == 200


def test_without_credentials_it_is_401(base_url: str) -> None:
    assert httpx.post(f"{base_url}/mcp", json={}).status_code == 401
