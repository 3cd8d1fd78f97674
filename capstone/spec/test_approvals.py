"""Approvals: the agents ask before they delete, the owner decides once, and the turn or the
run goes on; over JSON, Server-Sent Events and the WebSocket."""

import json
from typing import Any

import pytest
from conftest import User
from websockets.sync.client import connect

from course_shared.sse import parse_sse

pytestmark = pytest.mark.approvals


def new_task(user: User, title: str) -> int:
    return int(user.api.post("/tasks", json={"title": title}).json()["id"])


def ask_to_delete(user: User, task_id: int) -> dict[str, Any]:
    paused = user.api.post("/agent/chat", json={"message": f"delete task {task_id}"})
    assert paused.status_code == 202, paused.text
    return paused.json()  # type: ignore[no-any-return]


def test_a_deletion_waits_and_approving_it_streams_the_rest(alice: User) -> None:
    task_id = new_task(alice, "Return the library books")
    paused = ask_to_delete(alice, task_id)

    [approval] = paused["approvals"]
    assert (approval["tool"], approval["arguments"]) == ("delete_task", {"task_id": task_id})
    assert alice.api.get(f"/tasks/{task_id}").status_code == 200
    assert approval["id"] in [pending["id"] for pending in alice.api.get("/approvals").json()]

    response = alice.api.post(f"/approvals/{approval['id']}", json={"approve": True})

    events = parse_sse(response.text)
    assert events[-1].event == "done"
    assert events[-1].json()["session_id"] == paused["session_id"]
    assert alice.api.get(f"/tasks/{task_id}").status_code == 404


def test_rejecting_keeps_the_task_and_a_second_decision_is_409(alice: User) -> None:
    task_id = new_task(alice, "Water the plants")
    approval_id = ask_to_delete(alice, task_id)["approvals"][0]["id"]

    rejected = alice.api.post(
        f"/approvals/{approval_id}",
        json={"approve": False, "reason": "still needed"},
        headers={"Accept": "application/json"},
    )

    assert rejected.status_code == 200
    assert rejected.json()["reply"]
    assert alice.api.get(f"/tasks/{task_id}").status_code == 200
    again = alice.api.post(f"/approvals/{approval_id}", json={"approve": True})
    assert again.status_code == 409
    assert alice.api.get(f"/tasks/{task_id}").status_code == 200


def test_another_users_approval_is_not_found(alice: User, bob: User) -> None:
    task_id = new_task(alice, "Pay the rent")
    approval_id = ask_to_delete(alice, task_id)["approvals"][0]["id"]

    assert bob.api.post(f"/approvals/{approval_id}", json={"approve": True}).status_code == 404
    assert approval_id not in [a["id"] for a in bob.api.get("/approvals").json()]
    assert alice.api.get(f"/tasks/{task_id}").status_code == 200


def test_the_stream_and_the_websocket_end_with_an_approval_event(
    alice: User, base_url: str
) -> None:
    task_id = new_task(alice, "Sort the post")
    streamed = alice.api.post("/agent/chat/stream", json={"message": f"delete task {task_id}"})
    assert parse_sse(streamed.text)[-1].event == "approval"

    with connect(base_url.replace("http", "ws", 1) + "/api/v1/agent/ws") as socket:
        socket.send(json.dumps({"token": alice.token}))
        socket.send(json.dumps({"message": f"delete task {task_id}"}))
        events = [json.loads(socket.recv(timeout=30))]
        while events[-1]["event"] not in ("approval", "done", "error"):
            events.append(json.loads(socket.recv(timeout=30)))
        assert events[-1]["event"] == "approval"
        approval_id = events[-1]["data"]["approvals"][0]["id"]
        socket.send(json.dumps({"approval": approval_id, "approve": True}))
        while events[-1]["event"] not in ("done", "error"):
            events.append(json.loads(socket.recv(timeout=30)))

    assert events[-1]["event"] == "done"
    assert alice.api.get(f"/tasks/{task_id}").status_code == 404


def test_a_run_waits_in_awaiting_approval_until_decided(alice: User) -> None:
    task_id = new_task(alice, "Cancel the gym")
    run_id = alice.api.post("/runs", json={"message": f"delete task {task_id}"}).json()["id"]

    waiting = alice.api.get(f"/runs/{run_id}/result", params={"wait": 30})
    assert waiting.status_code == 202
    assert waiting.json()["status"] == "awaiting_approval"
    [approval] = [a for a in alice.api.get("/approvals").json() if a["run_id"] == run_id]

    accepted = alice.api.post(f"/approvals/{approval['id']}", json={"approve": True})

    assert accepted.status_code == 202
    final = alice.api.get(f"/runs/{run_id}/result", params={"wait": 30})
    assert final.json()["status"] == "succeeded"
    assert alice.api.get(f"/tasks/{task_id}").status_code == 404
