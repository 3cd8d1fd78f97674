"""Background runs through the API, carried out by the worker inside the app (RUNS_IN_PROCESS)."""

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from agents import Model
from agents.testing import ScriptedModel, assistant_message, function_call
from conftest import API, PausingModel, bearer, settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Session
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from course_shared.offline_model import OfflineModel
from course_shared.sse import parse_sse
from task_api.agents.provider import OFFLINE_ROUTES
from task_api.agents.team import build_agents
from task_api.config import Settings
from task_api.main import create_app
from task_api.models import User
from task_api.runs.webhooks import post

UseModel = Callable[[Model], None]


def start(client: TestClient, message: str, **options: Any) -> dict[str, Any]:
    response = client.post("/runs", json={"message": message, **options})
    assert response.status_code == 202, response.text
    return response.json()  # type: ignore[no-any-return]


def result(client: TestClient, run_id: int, wait: float = 30) -> Any:
    return client.get(f"/runs/{run_id}/result", params={"wait": wait})


@pytest.fixture
def use_run_model(fresh_app: FastAPI) -> Iterator[UseModel]:
    """Give the in-process worker's agents the test's model; the app's own afterwards."""
    worker = fresh_app.state.worker
    own = worker.agents

    def use(model: Model) -> None:
        worker.agents = build_agents(model, worker.settings.approval_required_tools)

    yield use
    worker.agents = own


def test_a_run_is_accepted_at_once_and_carried_out(client: TestClient) -> None:
    accepted = client.post("/runs", json={"message": "Add a task to buy milk"})

    assert accepted.status_code == 202
    body = accepted.json()
    assert set(body) == {"id", "status", "status_url", "events_url"}
    assert body["status_url"] == f"{API}/runs/{body['id']}" == accepted.headers["Location"]
    finished = result(client, body["id"])
    assert finished.status_code == 200
    run = finished.json()
    assert (run["status"], run["result"]["agent"]) == ("succeeded", "Clerk")
    assert "Buy milk" in run["result"]["reply"]
    assert [task["title"] for task in client.get("/tasks").json()] == ["Buy milk"]


def test_a_run_reports_its_progress(client: TestClient) -> None:
    run_id = start(client, "Plan my week")["id"]

    run = result(client, run_id).json()

    assert run["progress"] == {"percent": 100, "message": "Planned 4 of 4: Weekly review"}
    events = parse_sse(client.get(f"/runs/{run_id}/events").text)
    assert [e.json()["percent"] for e in events if e.event == "progress"] == [25, 50, 75, 100]
    calls = [e.json()["name"] for e in events if e.event == "tool_call"]
    assert calls == ["create_task"] * 4  # the progress reports show as `progress` only


def test_the_events_replay_from_storage_and_end_with_the_final_status(
    client: TestClient,
) -> None:
    run_id = start(client, "Add a task to buy milk")["id"]
    result(client, run_id)

    events = parse_sse(client.get(f"/runs/{run_id}/events").text)

    names = [e.event for e in events]
    assert names[:2] == ["agent", "agent"]
    assert names[-2:] == ["done", "status"]
    assert names.count("done") == 1
    assert events[-1].json() == {"status": "succeeded", "detail": None}
    ids = [int(e.id or 0) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_last_event_id_replays_only_what_came_after(client: TestClient) -> None:
    run_id = start(client, "Add a task to buy milk")["id"]
    result(client, run_id)
    everything = parse_sse(client.get(f"/runs/{run_id}/events").text)

    seen = {"Last-Event-ID": str(everything[2].id)}
    later = parse_sse(client.get(f"/runs/{run_id}/events", headers=seen).text)

    assert [e.id for e in later] == [e.id for e in everything[3:]]


def test_the_events_follow_a_run_live(client: TestClient, use_run_model: UseModel) -> None:
    model = PausingModel(OfflineModel(routes=OFFLINE_ROUTES), pause_at=2)
    use_run_model(model)
    run_id = start(client, "Add a task to buy milk")["id"]
    assert model.waiting.wait(timeout=10)

    with client.stream("GET", f"/runs/{run_id}/events") as response:
        model.resume()  # the rest of the run happens while the client listens
        events = parse_sse(response.read().decode())

    assert [e.event for e in events][-2:] == ["done", "status"]


def test_a_run_continues_a_conversation(client: TestClient) -> None:
    first = client.post("/agent/chat", json={"message": "Add a task to buy milk"}).json()

    run_id = start(client, "Mark it done", session_id=first["session_id"])["id"]

    assert result(client, run_id).json()["result"]["session_id"] == first["session_id"]
    assert client.get("/tasks").json()[0]["status"] == "completed"
    messages = client.get(f"/conversations/{first['session_id']}").json()["messages"]
    assert [m["content"] for m in messages][2] == "Mark it done"


def test_a_failed_run_says_why(client: TestClient, use_run_model: UseModel) -> None:
    model = ScriptedModel([OverflowError("the model broke")])
    use_run_model(model)

    run = result(client, start(client, "hello")["id"]).json()

    assert (run["status"], run["detail"]) == ("failed", "The model's answer could not be used")
    model.assert_complete()


def test_a_run_whose_every_tool_call_failed_has_failed(
    client: TestClient, use_run_model: UseModel
) -> None:
    model = ScriptedModel(
        [
            [function_call("transfer_to_clerk", {}, call_id="h1")],
            [function_call("complete_task", {"task_id": 41}, call_id="c1")],
            [assistant_message("I could not complete that task.")],
        ]
    )
    use_run_model(model)

    run = result(client, start(client, "Mark task 41 done")["id"]).json()

    assert run["status"] == "failed"
    assert run["detail"] == "Every tool call failed: complete_task: Task 41 not found"
    assert run["result"]["failed_tool_calls"] == ["complete_task: Task 41 not found"]
    model.assert_complete()


def test_a_run_says_which_of_its_tool_calls_failed(
    client: TestClient, use_run_model: UseModel
) -> None:
    client.post("/tasks", json={"title": "Buy milk"})
    model = ScriptedModel(
        [
            [function_call("transfer_to_clerk", {}, call_id="h1")],
            [
                function_call("create_task", {"title": "Buy milk"}, call_id="c1"),
                function_call("create_task", {"title": "Buy bread"}, call_id="c2"),
            ],
            [assistant_message("Added bread; milk was there already.")],
        ]
    )
    use_run_model(model)

    run = result(client, start(client, "Add milk and bread")["id"]).json()

    assert run["status"] == "succeeded"
    assert (run["result"]["tool_calls"], run["result"]["failed_tool_calls"]) == (
        2,
        ["create_task: An open task is already titled 'Buy milk'"],
    )
    model.assert_complete()


def test_a_running_run_is_cancelled_at_its_next_step(
    client: TestClient, use_run_model: UseModel
) -> None:
    model = PausingModel(OfflineModel(routes=OFFLINE_ROUTES), pause_at=2)
    use_run_model(model)
    run_id = start(client, "Add a task to buy milk")["id"]
    assert model.waiting.wait(timeout=10)  # it runs: the Clerk is about to add the task

    accepted = client.post(f"/runs/{run_id}/cancel")
    model.resume()

    assert accepted.status_code == 202
    assert (accepted.json()["status"], accepted.json()["cancel_requested"]) == ("running", True)
    run = result(client, run_id).json()
    assert (run["status"], run["detail"]) == ("cancelled", "Cancelled while it ran")
    assert client.get("/tasks").json() == []  # its next step was the tool call: not made


def test_a_finished_run_cannot_be_cancelled(client: TestClient) -> None:
    run_id = start(client, "hello")["id"]
    assert result(client, run_id).json()["status"] == "succeeded"

    refused = client.post(f"/runs/{run_id}/cancel")

    assert refused.status_code == 409
    assert refused.json()["detail"] == f"Run {run_id} has already finished: succeeded"
    assert client.get(f"/runs/{run_id}").json()["status"] == "succeeded"


def test_runs_are_listed_newest_first_and_by_status(client: TestClient) -> None:
    first = start(client, "Add a task to buy milk")["id"]
    result(client, first)
    second = start(client, "Add a task to buy bread")["id"]
    result(client, second)

    listed = client.get("/runs").json()
    succeeded = client.get("/runs", params={"status": "succeeded"}).json()

    assert [run["id"] for run in listed] == [second, first]
    assert len(succeeded) == 2
    assert client.get("/runs", params={"status": "failed"}).json() == []


def test_others_cannot_see_follow_or_cancel_a_run(
    client: TestClient, other_client: TestClient
) -> None:
    run_id = start(client, "Add a task to buy milk")["id"]
    result(client, run_id)

    assert other_client.get("/runs").json() == []
    for response in [
        other_client.get(f"/runs/{run_id}"),
        other_client.get(f"/runs/{run_id}/result"),
        other_client.get(f"/runs/{run_id}/events"),
        other_client.post(f"/runs/{run_id}/cancel"),
    ]:
        assert (response.status_code, response.json()["detail"]) == (
            404,
            f"Run {run_id} not found",
        )
    assert client.get(f"/runs/{run_id}").json()["status"] == "succeeded"


def test_a_run_cannot_continue_someone_elses_conversation(
    client: TestClient, other_client: TestClient
) -> None:
    alices = client.post("/agent/chat", json={"message": "hello"}).json()["session_id"]

    response = other_client.post("/runs", json={"message": "hi", "session_id": alices})

    assert response.status_code == 404
    assert other_client.get("/runs").json() == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "hi", "priority": "urgent"},
        {"message": "hi", "session_id": "has space"},
        {"message": "hi", "webhook_url": "x" * 2001},
        {"message": "hi", "extra": 1},
    ],
)
def test_a_bad_run_is_422(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/runs", json=body).status_code == 422
    assert client.get("/runs").json() == []


@pytest.mark.parametrize("params", [{"wait": -1}, {"wait": 61}, {"wait": "soon"}])
def test_a_bad_wait_is_422(client: TestClient, params: dict[str, Any]) -> None:
    run_id = start(client, "hello")["id"]

    assert client.get(f"/runs/{run_id}/result", params=params).status_code == 422


@pytest.mark.parametrize("run_id", [0, 2**31, 2**63])
def test_ids_no_run_has_are_404(client: TestClient, run_id: int) -> None:
    assert client.get(f"/runs/{run_id}").status_code == 404


def test_runs_need_a_token_or_a_key(anonymous_client: TestClient) -> None:
    assert anonymous_client.post("/runs", json={"message": "hi"}).status_code == 401


# --- without a worker in the app (RUNS_IN_PROCESS=false): the runs wait in the queue ------


@pytest.fixture
def queue_only(isolated_database_url: str) -> Iterator[tuple[TestClient, User]]:
    """An app on a database of its own, whose runs no worker takes; and alice on it."""
    app = create_app(settings_for(isolated_database_url, runs_in_process=False))
    with TestClient(app, base_url=f"http://testserver{API}") as client:
        with Session(app.state.engine) as session:
            alice = User(username="alice", hashed_password="x")
            session.add(alice)
            session.commit()
            session.refresh(alice)
        client.headers.update(bearer(alice, app.state.settings))
        yield client, alice


def test_a_user_may_queue_only_so_many_runs(queue_only: tuple[TestClient, User]) -> None:
    client, _ = queue_only
    state = client.app.state  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"max_queued_runs_per_user": 2})
    first, _second = start(client, "one")["id"], start(client, "two")["id"]

    refused = client.post("/runs", json={"message": "three"})

    assert refused.status_code == 429
    assert refused.json()["detail"] == "Too many requests: the limit is 2 queued runs"
    assert refused.headers["Retry-After"] == "10"
    client.post(f"/runs/{first}/cancel")  # one fewer waiting: room for another
    assert client.post("/runs", json={"message": "three"}).status_code == 202


def test_a_retried_post_with_its_idempotency_key_makes_no_second_run(
    queue_only: tuple[TestClient, User], other_client: TestClient
) -> None:
    client, _ = queue_only
    body, key = {"message": "Plan my week"}, {"Idempotency-Key": "plan-2026-w49"}

    first = client.post("/runs", json=body, headers=key)
    retried = client.post("/runs", json=body, headers=key)  # the answer was lost: again
    another = client.post("/runs", json=body, headers={"Idempotency-Key": "plan-2026-w50"})

    assert (first.status_code, retried.status_code) == (202, 202)
    assert retried.json() == first.json()
    assert another.json()["id"] != first.json()["id"]
    assert len(client.get("/runs").json()) == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 101])
def test_an_idempotency_key_is_short_and_printable(
    queue_only: tuple[TestClient, User], key: str
) -> None:
    client, _ = queue_only

    response = client.post("/runs", json={"message": "hi"}, headers={"Idempotency-Key": key})

    assert response.status_code == 422
    assert client.get("/runs").json() == []


def test_a_queued_run_is_cancelled_at_once(queue_only: tuple[TestClient, User]) -> None:
    client, _ = queue_only
    run_id = start(client, "Plan my week")["id"]

    cancelled = client.post(f"/runs/{run_id}/cancel")

    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"
    events = parse_sse(client.get(f"/runs/{run_id}/events").text)
    assert [(e.event, e.json()["status"]) for e in events] == [("status", "cancelled")]


def test_wait_answers_202_with_the_status_when_not_final(
    queue_only: tuple[TestClient, User],
) -> None:
    client, _ = queue_only
    run_id = start(client, "Add a task to buy milk")["id"]

    started = time.monotonic()
    response = result(client, run_id, wait=0.3)

    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert time.monotonic() - started >= 0.3


# --- webhooks -----------------------------------------------------------------------------


def test_webhooks_are_refused_until_the_operator_sets_a_secret(client: TestClient) -> None:
    body = {"message": "hi", "webhook_url": "https://example.com/hook"}

    response = client.post("/runs", json=body)

    assert response.status_code == 400
    assert "WEBHOOK_SECRET" in response.json()["detail"]


@pytest.fixture
def webhook_client(isolated_database_url: str) -> Iterator[TestClient]:
    """An app with webhooks on, and private targets refused, as in production."""
    app = create_app(settings_for(isolated_database_url, webhook_secret="s3cret"))
    with TestClient(app, base_url=f"http://testserver{API}") as client:
        with Session(app.state.engine) as session:
            alice = User(username="alice", hashed_password="x")
            session.add(alice)
            session.commit()
            session.refresh(alice)
        client.headers.update(bearer(alice, app.state.settings))
        yield client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://169.254.169.254/latest/meta-data",  # a cloud's metadata service
        "http://[::1]/hook",
        "http://localhost/hook",  # a name that resolves to loopback
        "http://10.0.0.8/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
        "http://no-such-host.invalid/hook",
        # IPv4 addresses inside IPv6 ones: mapped, compatible, NAT64, 6to4, Teredo
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",  # 169.254.169.254 through NAT64
        "http://[2002:7f00:1::]/hook",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
        "http://224.0.0.1/hook",  # multicast
        "http://[ff02::1]/hook",
    ],
)
def test_a_webhook_only_the_server_could_reach_is_refused(
    webhook_client: TestClient, url: str
) -> None:
    response = webhook_client.post("/runs", json={"message": "hi", "webhook_url": url})

    assert response.status_code == 400
    assert webhook_client.get("/runs").json() == []


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver on 127.0.0.1 that answers with the statuses the test gives it."""

    answers: ClassVar[list[int]] = []
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    redirect_to: ClassVar[str] = ""

    hold: ClassVar[threading.Event | None] = None  # set: answer only once it is set
    endless: ClassVar[bool] = False  # True: answer with a body that never ends

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Receiver.hold is not None:
            Receiver.hold.wait(timeout=60)
        Receiver.received.append((dict(self.headers), body))
        status = Receiver.answers.pop(0) if Receiver.answers else 200
        self.send_response(status)
        if status == 302:
            self.send_header("Location", Receiver.redirect_to)
        if Receiver.endless:  # 3 GB, it says: a client that read it would fill its memory
            self.send_header("Content-Length", str(3 * 1024**3))
            self.end_headers()
            with contextlib.suppress(OSError):  # the service hangs up without reading it
                while True:
                    self.wfile.write(b"x" * 65536)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receivers() -> Iterator[tuple[str, str]]:
    """Two receivers' URLs; the second should never be reached."""
    Receiver.answers, Receiver.received, Receiver.hold, Receiver.endless = [], [], None, False
    servers = [HTTPServer(("127.0.0.1", 0), Receiver) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tuple(f"http://127.0.0.1:{s.server_address[1]}/hook" for s in servers)  # type: ignore[misc]
    for server in servers:
        server.shutdown()


@pytest.fixture
def local_webhook_client(
    isolated_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """Webhooks on, private targets allowed (WEBHOOK_ALLOW_PRIVATE: development), quick retries."""
    monkeypatch.setattr("task_api.runs.webhooks.FIRST_BACKOFF_SECONDS", 0.01)
    settings = settings_for(
        isolated_database_url, webhook_secret="s3cret", webhook_allow_private=True
    )
    app = create_app(settings)
    with TestClient(app, base_url=f"http://testserver{API}") as client:
        with Session(app.state.engine) as session:
            alice = User(username="alice", hashed_password="x")
            session.add(alice)
            session.commit()
            session.refresh(alice)
        client.headers.update(bearer(alice, app.state.settings))
        yield client


def delivered(client: TestClient, run_id: int, attempts: int) -> list[Any]:
    """The run's webhook attempts, once there are this many (they follow the final status)."""
    deadline = time.monotonic() + 30
    while True:
        found = client.get(f"/runs/{run_id}").json()["webhook_attempts"]
        if len(found) >= attempts or time.monotonic() > deadline:
            return found  # type: ignore[no-any-return]
        time.sleep(0.02)


def test_the_final_status_is_posted_signed_and_retried(
    local_webhook_client: TestClient, receivers: tuple[str, str]
) -> None:
    client, (url, _) = local_webhook_client, receivers
    Receiver.answers = [500, 503]  # then 200
    run_id = start(client, "Add a task to buy milk", webhook_url=url)["id"]

    assert result(client, run_id).json()["status"] == "succeeded"

    attempts = delivered(client, run_id, 3)
    assert [a["status_code"] for a in attempts] == [500, 503, 200]
    headers, body = Receiver.received[-1]
    # A receiver checks it with the Standard Webhooks library, and the same secret.
    assert Webhook(b"s3cret").verify(body, headers) == json.loads(body)
    assert json.loads(body)["status"] == "succeeded"
    assert {h["webhook-id"] for h, _ in Receiver.received} == {f"run_{run_id}"}  # one message


def test_a_wait_for_approval_is_posted_too_as_a_message_of_its_own(
    local_webhook_client: TestClient, receivers: tuple[str, str]
) -> None:
    client, (url, _) = local_webhook_client, receivers
    task = client.post("/tasks", json={"title": "Old"}).json()
    run_id = start(client, f"delete task {task['id']}", webhook_url=url)["id"]
    assert result(client, run_id).json()["status"] == "awaiting_approval"
    delivered(client, run_id, 1)
    [approval] = client.get("/approvals").json()

    client.post(f"/approvals/{approval['id']}", json={"approve": True})

    assert result(client, run_id).json()["status"] == "succeeded"
    delivered(client, run_id, 2)
    messages = [(h["webhook-id"], json.loads(body)["status"]) for h, body in Receiver.received]
    assert messages == [
        (f"run_{run_id}_approval_1", "awaiting_approval"),
        (f"run_{run_id}", "succeeded"),
    ]


def test_a_replayed_delivery_is_refused_by_its_receiver(
    local_webhook_client: TestClient, receivers: tuple[str, str]
) -> None:
    client, (url, _) = local_webhook_client, receivers
    run_id = start(client, "hello", webhook_url=url)["id"]
    result(client, run_id)
    delivered(client, run_id, 1)
    headers, body = Receiver.received[-1]
    # Captured and sent again later, its timestamp is too old; and the timestamp is signed,
    # so moving it forward breaks the signature.
    sent = int(headers["webhook-timestamp"])
    stale = {**headers, "webhook-timestamp": str(sent - 3600)}
    moved = {**headers, "webhook-timestamp": str(sent + 60)}

    for forged in (stale, moved):
        with pytest.raises(WebhookVerificationError):
            Webhook(b"s3cret").verify(body, forged)


def test_a_receivers_answer_is_never_read(
    local_webhook_client: TestClient, receivers: tuple[str, str]
) -> None:
    client, (url, _) = local_webhook_client, receivers
    Receiver.endless = True
    run_id = start(client, "hello", webhook_url=url)["id"]
    result(client, run_id)

    [attempt] = delivered(client, run_id, 1)

    assert (attempt["status_code"], attempt["error"]) == (200, None)  # its status is enough


def test_a_slow_receiver_holds_no_run_slot(
    isolated_database_url: str, receivers: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("task_api.runs.webhooks.TIMEOUT_SECONDS", 30.0)
    Receiver.hold = threading.Event()  # the receiver answers only once the test lets it
    settings = settings_for(
        isolated_database_url,
        webhook_secret="s3cret",
        webhook_allow_private=True,
        worker_concurrency=1,
    )
    app = create_app(settings)
    try:
        with TestClient(app, base_url=f"http://testserver{API}") as client:
            with Session(app.state.engine) as session:
                alice = User(username="alice", hashed_password="x")
                session.add(alice)
                session.commit()
                session.refresh(alice)
            client.headers.update(bearer(alice, app.state.settings))
            first = start(client, "hello", webhook_url=receivers[0])["id"]
            assert result(client, first).json()["status"] == "succeeded"

            second = start(client, "Add a task to buy milk")["id"]  # one slot: is it free?

            assert result(client, second).json()["status"] == "succeeded"
            assert client.get(f"/runs/{first}").json()["webhook_attempts"] == []  # still out
            Receiver.hold.set()
    finally:
        Receiver.hold.set()


def test_a_webhook_redirect_is_not_followed(
    local_webhook_client: TestClient, receivers: tuple[str, str]
) -> None:
    client, (url, elsewhere) = local_webhook_client, receivers
    Receiver.redirect_to = elsewhere
    Receiver.answers = [302] * 5
    run_id = start(client, "hello", webhook_url=url)["id"]
    result(client, run_id)

    attempts = delivered(client, run_id, 5)

    assert [a["status_code"] for a in attempts] == [302] * 5
    assert len(Receiver.received) == 5  # all at the first receiver: none followed the redirect


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """hook.example, in a DNS that answers each lookup with the next of these addresses.

    What a rebinding attacker's DNS does: a harmless address for the check, then another.
    """
    answers: list[str] = []
    lookup = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "hook.example":
            return lookup(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers.pop(0), port))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    return answers


def test_a_webhook_goes_to_the_address_that_was_checked(
    receivers: tuple[str, str], rebinding_dns: list[str], settings: Settings
) -> None:
    port = urlsplit(receivers[0]).port
    rebinding_dns[:] = ["127.0.0.1", "127.0.0.2"]  # the receiver for the check, then nothing
    allowed = settings.model_copy(update={"webhook_allow_private": True})

    delivery = post(f"http://hook.example:{port}/hook", b"{}", {}, allowed)

    assert asyncio.run(delivery) == (200, None)
    [(headers, _)] = Receiver.received
    assert headers["Host"] == f"hook.example:{port}"
    assert rebinding_dns == ["127.0.0.2"]  # looked up once: for the check


def test_a_webhook_is_checked_again_at_delivery(
    receivers: tuple[str, str], rebinding_dns: list[str], settings: Settings
) -> None:
    port = urlsplit(receivers[0]).port
    rebinding_dns[:] = ["127.0.0.1"]  # public when the run was made, say; loopback now

    delivery = post(f"http://hook.example:{port}/hook", b"{}", {}, settings)

    assert asyncio.run(delivery) == (
        None,
        "The webhook host resolves to 127.0.0.1, which is not public",
    )
    assert Receiver.received == []
