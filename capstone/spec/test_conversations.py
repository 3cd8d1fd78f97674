"""Conversations as a resource: listed, read, renamed, deleted; each user's own."""

import uuid

import pytest
from conftest import User

pytestmark = pytest.mark.conversations


def start_conversation(user: User) -> tuple[str, str]:
    message = f"Add a task to read book {uuid.uuid4().hex[:8]}"
    session_id = user.api.post("/agent/chat", json={"message": message}).json()["session_id"]
    return session_id, message


def test_a_chat_makes_a_conversation_titled_by_its_first_message(alice: User) -> None:
    session_id, message = start_conversation(alice)

    listed = {c["id"]: c for c in alice.api.get("/conversations", params={"limit": 100}).json()}
    assert listed[session_id]["title"] == message
    read = alice.api.get(f"/conversations/{session_id}").json()
    assert [m["role"] for m in read["messages"]] == ["user", "assistant"]
    assert read["messages"][0]["content"] == message


def test_a_conversation_is_renamed_and_deleted(alice: User) -> None:
    session_id, _ = start_conversation(alice)

    renamed = alice.api.patch(f"/conversations/{session_id}", json={"title": "Reading"})
    assert renamed.json()["title"] == "Reading"
    assert alice.api.delete(f"/conversations/{session_id}").status_code == 204
    assert alice.api.get(f"/conversations/{session_id}").status_code == 404


def test_another_users_conversation_is_not_found(alice: User, bob: User) -> None:
    session_id, _ = start_conversation(alice)

    assert bob.api.get(f"/conversations/{session_id}").status_code == 404
    assert bob.api.delete(f"/conversations/{session_id}").status_code == 404
    going_on = bob.api.post("/agent/chat", json={"message": "hi", "session_id": session_id})
    assert going_on.status_code == 404
