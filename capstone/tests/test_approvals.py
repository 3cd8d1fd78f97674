"""Approvals: the agents ask before they delete, and go on once the owner decides."""

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from agents import Model
from agents.testing import ScriptedModel, assistant_message, function_call
from conftest import API, bearer, create_user, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from course_shared.sse import parse_sse
from task_api.agents.pauses import expire_pauses
from task_api.agents.team import build_agents
from task_api.main import create_app
from task_api.models import PausedTurn, Scope, User, utc_now
from task_api.runs.worker import Worker

UseModel = Callable[[Model], None]


def ask_to_delete(client: TestClient, task_id: int) -> dict[str, Any]:
    """A chat that asks to delete a task: it waits for approval (202)."""
    response = client.post("/agent/chat", json={"message": f"delete task {task_id}"})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def decide(client: TestClient, approval_id: str, **decision: Any) -> Any:
    """A decision, answered as one JSON reply."""
    headers = {"Accept": "application/json"}
    return client.post(f"/approvals/{approval_id}", json=decision, headers=headers)


def test_a_chat_asks_before_it_deletes(client: TestClient, task: dict[str, Any]) -> None:
    paused = ask_to_delete(client, task["id"])

    [approval] = paused["approvals"]
    assert approval["tool"] == "delete_task"
    assert approval["arguments"] == {"task_id": task["id"]}
    assert approval["agent"] == "Clerk"
    assert client.get(f"/tasks/{task['id']}").status_code == 200  # nothing is deleted yet
    [pending] = client.get("/approvals").json()
    assert pending["id"] == approval["id"]
    assert pending["session_id"] == paused["session_id"]
    assert pending["status"] == "pending"


def test_the_stream_ends_with_an_approval_event(client: TestClient, task: dict[str, Any]) -> None:
    response = client.post("/agent/chat/stream", json={"message": f"delete task {task['id']}"})

    events = parse_sse(response.text)
    assert events[-1].event == "approval"
    [approval] = json.loads(events[-1].data)["approvals"]
    assert approval["tool"] == "delete_task"
    assert "done" not in [event.event for event in events]
    assert client.get(f"/tasks/{task['id']}").status_code == 200


def test_approving_deletes_and_the_turn_streams_on(
    client: TestClient, task: dict[str, Any]
) -> None:
    paused = ask_to_delete(client, task["id"])

    response = client.post(f"/approvals/{paused['approvals'][0]['id']}", json={"approve": True})

    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    names = [event.event for event in events]
    assert names[0] == "tool_call"  # the decided call, shown again
    assert "tool_output" in names
    assert names[-1] == "done"
    done = json.loads(events[-1].data)
    assert done["reply"] == f"Deleted task {task['id']}."
    assert done["session_id"] == paused["session_id"]
    assert client.get(f"/tasks/{task['id']}").status_code == 404
    assert client.get("/approvals").json() == []
    # The conversation keeps the whole turn, once: the request, and the reply after the decision.
    conversation = client.get(f"/conversations/{paused['session_id']}").json()
    assert [m["content"] for m in conversation["messages"]] == [
        f"delete task {task['id']}",
        f"Deleted task {task['id']}.",
    ]


def test_rejecting_keeps_the_task_and_the_agents_say_so(
    client: TestClient, task: dict[str, Any]
) -> None:
    paused = ask_to_delete(client, task["id"])

    response = decide(client, paused["approvals"][0]["id"], approve=False, reason="I need it")

    assert response.status_code == 200
    reply = response.json()
    assert "could not delete" in reply["reply"]
    assert "I need it" in reply["reply"]
    assert reply["tool_calls"][0]["name"] == "delete_task"
    assert client.get(f"/tasks/{task['id']}").status_code == 200


def test_a_second_decision_is_409(client: TestClient, task: dict[str, Any]) -> None:
    approval_id = ask_to_delete(client, task["id"])["approvals"][0]["id"]
    assert decide(client, approval_id, approve=False).status_code == 200

    again = decide(client, approval_id, approve=True)

    assert again.status_code == 409
    assert again.json()["detail"] == f"Approval {approval_id} was rejected already"
    assert client.get(f"/tasks/{task['id']}").status_code == 200


def test_only_the_owner_sees_or_decides_an_approval(
    client: TestClient, other_client: TestClient, task: dict[str, Any]
) -> None:
    approval_id = ask_to_delete(client, task["id"])["approvals"][0]["id"]

    assert other_client.get("/approvals").json() == []
    refused = decide(other_client, approval_id, approve=True)

    assert refused.status_code == 404
    assert refused.json()["detail"] == f"Approval {approval_id} not found"
    assert client.get(f"/tasks/{task['id']}").status_code == 200
    assert decide(client, approval_id, approve=True).status_code == 200  # still the owner's


def test_a_read_only_key_sees_approvals_but_cannot_decide(
    client: TestClient, task: dict[str, Any]
) -> None:
    approval_id = ask_to_delete(client, task["id"])["approvals"][0]["id"]
    key = client.post("/api-keys", json={"name": "reader", "scopes": [Scope.READ]}).json()["key"]
    reader = {"X-API-Key": key, "Authorization": ""}

    assert len(client.get("/approvals", headers=reader).json()) == 1
    refused = client.post(f"/approvals/{approval_id}", json={"approve": True}, headers=reader)

    assert refused.status_code == 403
    assert client.get(f"/tasks/{task['id']}").status_code == 200


@pytest.mark.parametrize(
    "body",
    [{}, {"approve": "yes"}, {"approve": 1}, {"approve": True, "reason": "x" * 501}, []],
)
def test_a_decision_is_a_plain_yes_or_no(
    client: TestClient, task: dict[str, Any], body: Any
) -> None:
    approval_id = ask_to_delete(client, task["id"])["approvals"][0]["id"]

    assert client.post(f"/approvals/{approval_id}", json=body).status_code == 422
    assert client.get(f"/tasks/{task['id']}").status_code == 200
    assert client.get("/approvals").json()[0]["status"] == "pending"


def expire(engine: Engine) -> None:
    """As if the approvals' time had run out."""
    with Session(engine) as session:
        session.execute(update(PausedTurn).values(expires_at=utc_now()))
        session.commit()


def test_an_approval_not_decided_in_time_is_rejected(
    fresh_app: FastAPI, client: TestClient, engine: Engine, task: dict[str, Any]
) -> None:
    paused = ask_to_delete(client, task["id"])
    approval_id = paused["approvals"][0]["id"]
    expire(engine)

    late = decide(client, approval_id, approve=True)
    assert late.status_code == 409
    assert late.json()["detail"] == f"Approval {approval_id} expired: it counts as rejected"

    # A worker takes the turn on, with the call rejected, though nobody listens.
    [expired] = expire_pauses(engine, fresh_app.state.run_queue.notifier)
    asyncio.run(fresh_app.state.worker.finish_expired_turn(expired))

    assert client.get(f"/tasks/{task['id']}").status_code == 200
    messages = client.get(f"/conversations/{paused['session_id']}").json()["messages"]
    assert messages[-1]["content"].startswith(f"I could not delete task {task['id']}")
    assert "in time" in messages[-1]["content"]
    assert client.get("/approvals").json() == []


def test_a_state_made_by_other_agents_is_refused(
    client: TestClient, engine: Engine, task: dict[str, Any]
) -> None:
    approval_id = ask_to_delete(client, task["id"])["approvals"][0]["id"]
    with Session(engine) as session:  # as after a release that changed the agents' tools
        session.execute(update(PausedTurn).values(agents_version="an older release"))
        session.commit()

    refused = decide(client, approval_id, approve=True)

    assert refused.status_code == 409
    assert "another version of the agents" in refused.json()["detail"]
    assert client.get(f"/tasks/{task['id']}").status_code == 200
    assert client.get("/approvals").json() == []


def test_a_state_the_sdk_cannot_read_is_refused(
    client: TestClient, engine: Engine, task: dict[str, Any]
) -> None:
    approval_id = ask_to_delete(client, task["id"])["approvals"][0]["id"]
    with Session(engine) as session:
        pause = session.exec(select(PausedTurn)).one()
        assert pause.state is not None
        pause.state = {**pause.state, "$schemaVersion": "0.1"}  # written by an SDK long gone
        session.add(pause)
        session.commit()

    refused = decide(client, approval_id, approve=True)

    assert refused.status_code == 409
    assert "another version of the agents" in refused.json()["detail"]
    assert client.get(f"/tasks/{task['id']}").status_code == 200


def test_several_calls_each_wait_for_their_own_decision(
    client: TestClient, use_model: UseModel
) -> None:
    first = client.post("/tasks", json={"title": "First"}).json()["id"]
    second = client.post("/tasks", json={"title": "Second"}).json()["id"]
    use_model(
        ScriptedModel(
            [
                [function_call("transfer_to_clerk", {}, call_id="handoff")],
                [
                    function_call("delete_task", {"task_id": first}, call_id="a"),
                    function_call("delete_task", {"task_id": second}, call_id="b"),
                ],
                [assistant_message("Deleted the first; kept the second.")],
            ]
        )
    )
    paused = client.post("/agent/chat", json={"message": "delete both"}).json()
    ids = [approval["id"] for approval in paused["approvals"]]
    assert len(ids) == 2

    # One decided: that call runs, and the turn asks again for the other, by the same id.
    again = decide(client, ids[0], approve=True)
    assert again.status_code == 202
    assert [approval["id"] for approval in again.json()["approvals"]] == [ids[1]]
    assert client.get(f"/tasks/{first}").status_code == 404
    assert client.get(f"/tasks/{second}").status_code == 200
    assert decide(client, ids[0], approve=False).status_code == 409  # decided once, still

    done = decide(client, ids[1], approve=False)
    assert done.status_code == 200
    assert done.json()["reply"] == "Deleted the first; kept the second."
    assert client.get(f"/tasks/{second}").status_code == 200


def test_only_the_named_tools_wait(
    client: TestClient, fresh_app: FastAPI, task: dict[str, Any]
) -> None:
    capabilities = client.get("/agent/capabilities").json()["agents"]
    waiting = {t["name"] for a in capabilities for t in a["tools"] if t["needs_approval"]}
    assert waiting == {"delete_task"}

    done = client.post("/agent/chat", json={"message": f"complete task {task['id']}"})
    assert done.status_code == 200


def test_an_unknown_tool_name_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="no tool called delete_tsk"):
        build_agents(ScriptedModel([]), frozenset({"delete_tsk"}))


def test_approvals_need_a_token_or_a_key(anonymous_client: TestClient) -> None:
    assert anonymous_client.get("/approvals").status_code == 401
    assert anonymous_client.post("/approvals/abc", json={"approve": True}).status_code == 401


@pytest.mark.parametrize("approval_id", ["abc", "a" * 64, "0"])
def test_ids_no_approval_has_are_404(client: TestClient, approval_id: str) -> None:
    assert decide(client, approval_id, approve=True).status_code == 404


# ---- over the WebSocket


def test_the_websocket_asks_and_takes_the_answer_on_the_socket(
    fresh_app: FastAPI, user: User, task: dict[str, Any], client: TestClient
) -> None:
    token = bearer(user, fresh_app.state.settings)["Authorization"].removeprefix("Bearer ")
    with TestClient(fresh_app).websocket_connect(f"{API}/agent/ws") as websocket:
        websocket.send_json({"token": token})
        websocket.send_json({"message": f"delete task {task['id']}"})
        events = receive_until(websocket, "approval")
        [approval] = events[-1]["data"]["approvals"]
        assert client.get(f"/tasks/{task['id']}").status_code == 200

        websocket.send_json({"approval": approval["id"], "approve": True})
        events = receive_until(websocket, "done")
        assert events[-1]["data"]["reply"] == f"Deleted task {task['id']}."

        websocket.send_json({"approval": approval["id"], "approve": True})  # once only
        [refused] = receive_until(websocket, "error")
        assert refused["data"]["status"] == 409
    assert client.get(f"/tasks/{task['id']}").status_code == 404


def receive_until(websocket: Any, last: str) -> list[dict[str, Any]]:
    events = []
    while True:
        events.append(websocket.receive_json())
        if events[-1]["event"] in (last, "error"):
            return events


# ---- background runs


def test_a_run_waits_for_approval_and_a_worker_resumes_it(
    client: TestClient, task: dict[str, Any]
) -> None:
    run = client.post("/runs", json={"message": f"delete task {task['id']}"}).json()

    waiting = client.get(f"/runs/{run['id']}/result", params={"wait": 30})
    assert waiting.status_code == 202
    assert waiting.json()["status"] == "awaiting_approval"
    assert waiting.json()["detail"] == "Waiting for approval: delete_task"
    [approval] = client.get("/approvals").json()
    assert approval["run_id"] == run["id"]
    assert client.get(f"/tasks/{task['id']}").status_code == 200

    accepted = client.post(f"/approvals/{approval['id']}", json={"approve": True})
    assert accepted.status_code == 202
    assert accepted.json()["status_url"] == f"/api/v1/runs/{run['id']}"

    final = wait_until_final(client, run["id"])
    assert final["status"] == "succeeded"
    assert final["result"]["reply"] == f"Deleted task {task['id']}."
    assert client.get(f"/tasks/{task['id']}").status_code == 404
    events = parse_sse(client.get(f"/runs/{run['id']}/events").text)
    statuses = [json.loads(e.data)["status"] for e in events if e.event == "status"]
    assert statuses == ["awaiting_approval", "queued", "succeeded"]
    assert "approval" in [event.event for event in events]


def wait_until_final(client: TestClient, run_id: int) -> dict[str, Any]:
    """The run once final: a result wait ends early when the run pauses, so wait again."""
    for _ in range(10):
        response = client.get(f"/runs/{run_id}/result", params={"wait": 30})
        if response.status_code == 200:
            return response.json()  # type: ignore[no-any-return]
    raise AssertionError(f"run {run_id} is still {response.json()['status']}")


def test_a_rejected_run_succeeds_without_deleting(
    client: TestClient, task: dict[str, Any]
) -> None:
    run = client.post("/runs", json={"message": f"delete task {task['id']}"}).json()
    client.get(f"/runs/{run['id']}/result", params={"wait": 30})
    [approval] = client.get("/approvals").json()

    client.post(f"/approvals/{approval['id']}", json={"approve": False, "reason": "Not yet"})

    final = wait_until_final(client, run["id"])
    assert final["status"] == "succeeded"  # a refused call is not a failed one
    assert final["result"]["failed_tool_calls"] == []
    assert "Not yet" in final["result"]["reply"]
    assert client.get(f"/tasks/{task['id']}").status_code == 200


def test_a_run_whose_approval_expired_goes_on_rejected(
    fresh_app: FastAPI, client: TestClient, engine: Engine, task: dict[str, Any]
) -> None:
    run = client.post("/runs", json={"message": f"delete task {task['id']}"}).json()
    client.get(f"/runs/{run['id']}/result", params={"wait": 30})
    expire(engine)

    assert expire_pauses(engine, fresh_app.state.run_queue.notifier) == []  # a run's: queued

    final = wait_until_final(client, run["id"])
    assert final["status"] == "succeeded"
    assert "in time" in final["result"]["reply"]
    assert client.get(f"/tasks/{task['id']}").status_code == 200


def test_a_waiting_run_is_cancelled_at_once_and_its_approval_closes(
    client: TestClient, task: dict[str, Any]
) -> None:
    run = client.post("/runs", json={"message": f"delete task {task['id']}"}).json()
    client.get(f"/runs/{run['id']}/result", params={"wait": 30})
    [approval] = client.get("/approvals").json()

    cancelled = client.post(f"/runs/{run['id']}/cancel")
    assert cancelled.json()["status"] == "cancelled"

    late = client.post(f"/approvals/{approval['id']}", json={"approve": True})
    assert late.status_code == 409
    assert client.get(f"/runs/{run['id']}").json()["status"] == "cancelled"
    assert client.get(f"/tasks/{task['id']}").status_code == 200


def test_the_owner_of_a_run_alone_decides_it(
    client: TestClient, session: Session, fresh_app: FastAPI, task: dict[str, Any]
) -> None:
    run = client.post("/runs", json={"message": f"delete task {task['id']}"}).json()
    client.get(f"/runs/{run['id']}/result", params={"wait": 30})
    [approval] = client.get("/approvals").json()
    mallory = create_user(session, "mallory")
    headers = bearer(mallory, fresh_app.state.settings)

    refused = client.post(f"/approvals/{approval['id']}", json={"approve": True}, headers=headers)

    assert refused.status_code == 404
    assert client.get(f"/runs/{run['id']}").json()["status"] == "awaiting_approval"


def test_a_worker_takes_on_no_more_expired_turns_than_its_concurrency(
    isolated_database_url: str,
) -> None:
    settings = settings_for(isolated_database_url, runs_in_process=False, worker_concurrency=2)
    app = create_app(settings)
    with TestClient(app, base_url=f"http://testserver{API}") as client:
        with Session(app.state.engine) as session:
            alice = create_user(session, "alice")
        client.headers.update(bearer(alice, settings))
        for title in ("One", "Two", "Three"):
            task_id = client.post("/tasks", json={"title": title}).json()["id"]
            ask_to_delete(client, task_id)
        expire(app.state.engine)
        state = app.state
        worker = Worker(settings, state.engine, state.run_queue, state.broker, state.agents)
        worker.expired_turns = {object(), object()}  # type: ignore[arg-type]  # both places taken

        asyncio.run(worker.take_runs())

        assert len(worker.expired_turns) == 2  # none taken on
        assert len(client.get("/approvals").json()) == 0  # expired, all three
        with Session(app.state.engine) as session:
            waiting = session.exec(select(PausedTurn).where(col(PausedTurn.taken_at).is_(None)))
            assert len(list(waiting)) == 3  # left for a sweep with room
