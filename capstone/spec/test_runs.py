"""Background runs: queued at once, carried out by a worker, followed by status, result and
events, cancelled, and made once however often a client retries."""

import uuid

import pytest
from conftest import User

from course_shared.sse import parse_sse

pytestmark = pytest.mark.runs


def test_a_run_is_queued_at_once_and_its_result_waited_for(alice: User) -> None:
    accepted = alice.api.post("/runs", json={"message": "Plan my week"})

    assert accepted.status_code == 202
    run = accepted.json()
    assert run["status"] == "queued"
    assert run["status_url"] == f"/api/v1/runs/{run['id']}"
    result = alice.api.get(f"/runs/{run['id']}/result", params={"wait": 30}).json()
    assert result["status"] == "succeeded", result
    assert result["result"]["reply"] and result["result"]["tool_calls"] >= 1


def test_its_events_replay_to_the_final_status(alice: User) -> None:
    run_id = alice.api.post("/runs", json={"message": "Add a task to wash the car"}).json()["id"]
    alice.api.get(f"/runs/{run_id}/result", params={"wait": 30})

    events = parse_sse(alice.api.get(f"/runs/{run_id}/events").text)

    names = [event.event for event in events]
    assert names.count("done") == 1 and names[-2:] == ["done", "status"]
    assert events[-1].json()["status"] == "succeeded"
    later = parse_sse(
        alice.api.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": events[1].id}).text
    )
    assert [event.id for event in later] == [event.id for event in events[2:]]


def test_a_retry_with_the_same_idempotency_key_makes_no_second_run(alice: User) -> None:
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = alice.api.post("/runs", json={"message": "hi"}, headers=key).json()
    retry = alice.api.post("/runs", json={"message": "hi"}, headers=key).json()

    assert retry["id"] == first["id"]


def test_a_finished_run_cannot_be_cancelled(alice: User) -> None:
    run_id = alice.api.post("/runs", json={"message": "hi"}).json()["id"]
    alice.api.get(f"/runs/{run_id}/result", params={"wait": 30})

    assert alice.api.post(f"/runs/{run_id}/cancel").status_code == 409


def test_another_users_run_is_not_found(alice: User, bob: User) -> None:
    run_id = alice.api.post("/runs", json={"message": "hi"}).json()["id"]

    assert bob.api.get(f"/runs/{run_id}").status_code == 404
    assert bob.api.get(f"/runs/{run_id}/events").status_code == 404
    assert bob.api.post(f"/runs/{run_id}/cancel").status_code == 404
