"""GET /tasks/events: the caller's task changes, live, as Server-Sent Events."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import create_user
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, col, delete

from course_shared.sse import COMMENT, ServerSentEvent, iter_sse
from task_api.config import Settings
from task_api.models import TaskCreate, TaskEvent, User
from task_api.rate_limit import RateLimits
from task_api.repository import TaskRepository
from task_api.services import TaskService


@pytest.fixture(autouse=True)
def frequent_keepalives(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep-alive comments every 20 ms instead of every 15 s.

    A test that waits for an event that never comes then fails after `MAX_LINES`
    comments instead of hanging.
    """
    monkeypatch.setattr("fastapi.routing._PING_INTERVAL", 0.02)


MAX_LINES = 500


@contextmanager
def open_stream(client: TestClient, **headers: str) -> Iterator[Any]:
    with client.stream("GET", "/tasks/events", headers=headers) as response:
        yield response


def read_events(response: Any, count: int) -> list[ServerSentEvent]:
    """The next `count` events of the stream, keep-alive comments skipped."""
    events: list[ServerSentEvent] = []
    for seen, event in enumerate(iter_sse(response.iter_lines(), include_comments=True)):
        assert seen < MAX_LINES, f"only {len(events)} of {count} events arrived"
        if event.event != COMMENT:
            events.append(event)
        if len(events) == count:
            return events
    raise AssertionError("the stream ended")


def test_the_stream_is_server_sent_events_that_no_proxy_buffers(client: TestClient) -> None:
    with open_stream(client) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"] == "no-cache"
        assert response.headers["X-Accel-Buffering"] == "no"


def test_every_change_arrives_as_an_event_with_an_id(client: TestClient) -> None:
    with open_stream(client) as response:
        task = client.post("/tasks", json={"title": "Buy milk"}).json()
        updated = client.patch(f"/tasks/{task['id']}", json={"status": "completed"}).json()
        client.delete(f"/tasks/{task['id']}")

        events = read_events(response, 3)

    assert [(e.event, e.id) for e in events] == [
        ("task.created", "1"),
        ("task.updated", "2"),
        ("task.deleted", "3"),
    ]
    assert events[0].json() == task
    assert events[1].json() == updated
    assert events[2].json() == {"id": task["id"]}


def test_refused_changes_send_no_event(client: TestClient) -> None:
    with open_stream(client) as response:
        client.post("/tasks", json={"title": "Buy milk"})
        client.post("/tasks", json={"title": "Buy milk"})  # 409
        client.patch("/tasks/1", json={})  # 400
        client.delete("/tasks/99")  # 404
        client.post("/tasks", json={"title": "Call the bank"})

        events = read_events(response, 2)

    assert [e.json()["title"] for e in events] == ["Buy milk", "Call the bank"]


def test_other_users_changes_never_arrive(client: TestClient, other_client: TestClient) -> None:
    with open_stream(client) as response:
        other_client.post("/tasks", json={"title": "Bob's secret"})
        client.post("/tasks", json={"title": "Alice's task"})

        (event,) = read_events(response, 1)

    assert event.json()["title"] == "Alice's task"


def test_a_client_that_reconnects_gets_what_it_missed(client: TestClient) -> None:
    for title in ["One", "Two", "Three"]:
        client.post("/tasks", json={"title": title})

    with open_stream(client, **{"Last-Event-ID": "1"}) as response:
        client.post("/tasks", json={"title": "Four"})

        events = read_events(response, 3)

    assert [(e.id, e.json()["title"]) for e in events] == [
        ("2", "Two"),
        ("3", "Three"),
        ("4", "Four"),
    ]


def test_a_client_that_missed_too_much_is_told_to_reload(
    client: TestClient, session: Session
) -> None:
    for number in range(4):
        client.post("/tasks", json={"title": f"Task {number}"})
    # Events 1 and 2 were purged (TASK_EVENT_RETENTION): a client that saw only 1 missed 2.
    session.execute(delete(TaskEvent).where(col(TaskEvent.id) <= 2))
    session.commit()

    with open_stream(client, **{"Last-Event-ID": "1"}) as response:
        client.post("/tasks", json={"title": "Task 4"})
        events = read_events(response, 2)

    assert events[0].event == "task.resync"
    assert (events[1].id, events[1].json()["title"]) == ("5", "Task 4")


def test_a_last_event_id_from_the_future_is_told_to_reload(client: TestClient) -> None:
    client.post("/tasks", json={"title": "One"})

    with open_stream(client, **{"Last-Event-ID": "99"}) as response:  # a database reset?
        (event,) = read_events(response, 1)

    assert event.event == "task.resync"


@pytest.mark.parametrize(
    "last_event_id",
    ["abc", "", "-1", "1e3", "9" * 5000, b"\xb2"],  # b"\xb2" reads as "\u00b2", a digit to Python
)
def test_a_last_event_id_we_did_not_send_replays_nothing(
    client: TestClient, last_event_id: str
) -> None:
    client.post("/tasks", json={"title": "Old news"})

    with open_stream(client, **{"Last-Event-ID": last_event_id}) as response:
        client.post("/tasks", json={"title": "Fresh"})

        (event,) = read_events(response, 1)

    assert event.json()["title"] == "Fresh"


def test_keepalive_comments_keep_an_idle_stream_open(client: TestClient) -> None:
    with open_stream(client) as response:
        first = next(iter_sse(response.iter_lines(), include_comments=True))

    assert (first.event, first.data) == (COMMENT, "ping")


def test_a_disconnected_client_is_unsubscribed(app: FastAPI, client: TestClient) -> None:
    alice = client.get("/users/me").json()["id"]
    listeners = app.state.broker.notifier.listeners
    with open_stream(client) as response:
        read_events_or_comments = iter_sse(response.iter_lines(), include_comments=True)
        next(read_events_or_comments)
        assert len(listeners[f"tasks:{alice}"]) == 1

    # The server notices the disconnect on its own event loop: wait for it, within a bound.
    for _ in range(MAX_LINES):
        if not listeners[f"tasks:{alice}"]:
            break
        client.get("/health")
    assert not listeners[f"tasks:{alice}"]


def test_one_users_changes_are_saved_one_at_a_time(
    fresh_app: FastAPI, engine: Engine, session: Session, user: User
) -> None:
    """While one change is being saved, the same user's next one waits: the user's events are
    committed in the order of their ids, so a stream reading the ids after its last misses none."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: it lets one writer in at a time")
    assert user.id is not None
    someone = create_user(session, "someone")
    assert someone.id is not None

    def tasks_of(owner_id: int, session: Session) -> TaskService:
        return TaskService(TaskRepository(session), owner_id, fresh_app.state.broker)

    with Session(engine) as first, Session(engine) as second:
        TaskRepository(first).lock_owner(user.id)  # a change begun, not yet saved
        second.exec(text("SET LOCAL lock_timeout = '200ms'"))  # type: ignore[call-overload]
        with pytest.raises(OperationalError, match="lock timeout"):
            tasks_of(user.id, second).create_task(TaskCreate(title="Waits its turn"))
        second.rollback()

        tasks_of(someone.id, second).create_task(TaskCreate(title="Someone else's"))  # no wait
        first.rollback()  # the first change is over: the next one goes through
        tasks_of(user.id, second).create_task(TaskCreate(title="Waits its turn"))


def test_a_stuck_change_holds_the_users_next_one_up_for_seconds_only(
    client: TestClient, engine: Engine, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that stalls mid-change (a paused VM) keeps its locks; the database's
    lock_timeout ends the wait behind it: 503, not a request that hangs."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no row locks: it lets one writer in at a time")
    assert user.id is not None

    with Session(engine) as stuck:
        TaskRepository(stuck).lock_owner(user.id)  # a change begun, and its process stalled
        started = time.monotonic()
        waited = client.post("/tasks", json={"title": "Behind the stuck one"})
        seconds = time.monotonic() - started

    assert waited.status_code == 503
    assert waited.headers["Retry-After"] == "5"
    assert seconds < 10  # lock_timeout is 5 s
    assert client.post("/tasks", json={"title": "Behind the stuck one"}).status_code == 201


def test_the_stream_needs_a_token(anonymous_client: TestClient) -> None:
    response = anonymous_client.get("/tasks/events")

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_api_document_says_the_errors_are_json(service_client: TestClient) -> None:
    paths = service_client.get("/openapi.json").json()["paths"]
    responses = paths["/api/v1/tasks/events"]["get"]["responses"]

    assert set(responses["200"]["content"]) == {"text/event-stream"}
    for status in ["401", "429"]:
        assert set(responses[status]["content"]) == {"application/json"}


def test_a_user_may_hold_only_so_many_streams_open(
    fresh_app: FastAPI, client: TestClient, settings: Settings
) -> None:
    fresh_app.state.rate_limits = RateLimits(settings.model_copy(update={"max_open_per_user": 2}))

    with open_stream(client) as first, open_stream(client) as second:
        assert (first.status_code, second.status_code) == (200, 200)
        with open_stream(client) as refused:
            assert refused.status_code == 429
            refused.read()
            detail = refused.json()["detail"]
        assert detail == "Too many requests: the limit is 2 open streams, waits and sockets"
        assert client.get("/tasks").status_code == 200  # only what stays open is bounded

    # Closed, they no longer count (the server notices on its own loop: within a bound).
    for _ in range(MAX_LINES):
        with open_stream(client) as again:
            if again.status_code == 200:
                break
    assert again.status_code == 200


def test_a_stream_ends_when_its_key_is_revoked(
    client: TestClient, anonymous_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("task_api.deps.CREDENTIALS_RECHECK_SECONDS", 0)
    key = client.post("/api-keys", json={"name": "dashboard"}).json()

    with open_stream(anonymous_client, **{"X-API-Key": key["key"]}) as response:
        assert response.status_code == 200
        client.delete(f"/api-keys/{key['id']}")
        client.post("/tasks", json={"title": "After the revocation"})
        events = [
            event
            for _, event in zip(
                range(MAX_LINES),
                iter_sse(response.iter_lines(), include_comments=True),
                strict=False,
            )
            if event.event != COMMENT
        ]

    assert events == []  # the stream ended, and told nothing of the new task
