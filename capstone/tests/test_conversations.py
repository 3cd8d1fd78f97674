"""/conversations: your conversations with the agents, and nobody else's."""

from typing import Any

import pytest
from fastapi.testclient import TestClient


def talk(client: TestClient, message: str, session_id: str | None = None) -> str:
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["session_id"] = session_id
    response = client.post("/agent/chat", json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["session_id"])


def test_a_conversation_is_titled_by_its_first_message(client: TestClient) -> None:
    session_id = talk(client, "Add a task to buy milk")
    talk(client, "What is still pending?", session_id)

    [listed] = client.get("/conversations").json()

    assert (listed["id"], listed["title"]) == (session_id, "Add a task to buy milk")


def test_a_long_first_message_makes_a_short_title(client: TestClient) -> None:
    talk(client, "Add a task to " + "really " * 20 + "buy milk")

    [listed] = client.get("/conversations").json()

    assert len(listed["title"]) == 60 and listed["title"].endswith("…")


def test_conversations_are_listed_newest_first_a_page_at_a_time(client: TestClient) -> None:
    first = talk(client, "hello")
    second = talk(client, "hi there")
    talk(client, "and you?", first)  # `first` is the one talked in last

    ids = [c["id"] for c in client.get("/conversations").json()]
    page = client.get("/conversations", params={"limit": 1, "offset": 1}).json()

    assert ids == [first, second]
    assert [c["id"] for c in page] == [second]


def test_read_a_conversation_with_what_was_said(client: TestClient) -> None:
    session_id = talk(client, "Add a task to buy milk")

    conversation = client.get(f"/conversations/{session_id}").json()

    assert set(conversation) == {"id", "title", "created_at", "updated_at", "messages"}
    user, assistant = conversation["messages"]
    assert user == {"role": "user", "content": "Add a task to buy milk"}
    assert assistant["role"] == "assistant" and "Buy milk" in assistant["content"]


def test_rename_a_conversation(client: TestClient) -> None:
    session_id = talk(client, "hello")

    response = client.patch(f"/conversations/{session_id}", json={"title": "  Groceries  "})

    assert response.status_code == 200
    assert response.json()["title"] == "Groceries"
    assert client.get(f"/conversations/{session_id}").json()["title"] == "Groceries"


@pytest.mark.parametrize(
    "body", [{}, {"title": ""}, {"title": "x" * 101}, {"title": "a\x00b"}, {"title": "ok", "x": 1}]
)
def test_a_bad_title_is_422(client: TestClient, body: dict[str, Any]) -> None:
    session_id = talk(client, "hello")

    assert client.patch(f"/conversations/{session_id}", json=body).status_code == 422
    assert client.get(f"/conversations/{session_id}").json()["title"] == "hello"


def test_delete_a_conversation(client: TestClient) -> None:
    session_id = talk(client, "hello")

    assert client.delete(f"/conversations/{session_id}").status_code == 204

    assert client.get(f"/conversations/{session_id}").status_code == 404
    assert client.get("/conversations").json() == []


def test_others_cannot_list_read_rename_or_delete_a_conversation(
    client: TestClient, other_client: TestClient
) -> None:
    alices = talk(client, "Add a task to buy milk")
    detail = f"Conversation {alices} not found"

    assert other_client.get("/conversations").json() == []
    for response in [
        other_client.get(f"/conversations/{alices}"),
        other_client.patch(f"/conversations/{alices}", json={"title": "Mine"}),
        other_client.delete(f"/conversations/{alices}"),
    ]:
        assert (response.status_code, response.json()["detail"]) == (404, detail)
    assert client.get(f"/conversations/{alices}").json()["title"] == "Add a task to buy milk"


@pytest.mark.parametrize("conversation_id", ["no-such-one", "x" * 64])
def test_an_unknown_conversation_is_404(client: TestClient, conversation_id: str) -> None:
    assert client.get(f"/conversations/{conversation_id}").status_code == 404


@pytest.mark.parametrize("conversation_id", ["has space", "x" * 65, "semi;colon"])
def test_a_malformed_conversation_id_is_422(client: TestClient, conversation_id: str) -> None:
    assert client.get(f"/conversations/{conversation_id}").status_code == 422


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"offset": 10**30}]
)
def test_a_bad_page_is_422(client: TestClient, params: dict[str, int]) -> None:
    assert client.get("/conversations", params=params).status_code == 422


def test_conversations_need_a_token_or_a_key(anonymous_client: TestClient) -> None:
    assert anonymous_client.get("/conversations").status_code == 401
