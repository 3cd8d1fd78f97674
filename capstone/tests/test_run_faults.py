"""Background runs survive what their parts do: a worker paused past its lease, killed, or
stopped; the database or Redis cut off or stalled. As an operator runs it: an API process
that only queues, two `python -m task_api.runs.worker` processes, PostgreSQL and Redis each
behind a TCP proxy of the test's own (proxy.py), and a webhook receiver.

After each fault: every worker is alive, every run is final exactly once (one final status,
a `done` event and a saved turn only for a run that succeeded), every final status reached
its webhook exactly once, and no request was answered 500 or kept waiting.

A run's end (its turn saved, its `done` event, its final status) is one transaction: there is
no moment between `done` and the final status to pause a worker in. The pause during the
reply, before that transaction, is the last moment a run can be interrupted.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from conftest import POSTGRES_URL, REDIS_URL
from proxy import Proxy, proxy_for, through
from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from task_api.database import create_db_engine, migrate
from task_api.models import Conversation, ConversationTurn
from task_api.runs.models import FINAL_STATUSES, AgentRun, AgentRunEvent

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None or REDIS_URL is None,
    reason="needs PostgreSQL and Redis: set TEST_DATABASE_URL and TEST_REDIS_URL (CI does)",
)
CAPSTONE = Path(__file__).resolve().parent.parent
SCHEMA = "run_faults"
LEASE_SECONDS = 3
FAULT_SECONDS = 10
# The longest any request may take, faults included: a stalled database is given up on
# within seconds (database.py), a stalled Redis within one (events.py).
ANSWER_SECONDS = 15


def wait_until(condition: Callable[[], object], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: keeps the body of every POST, answers 200."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def webhook_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A schema of this module's own, on the real server (not through the proxy)."""
    assert POSTGRES_URL is not None
    admin = create_db_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        connection.exec_driver_sql(f"CREATE SCHEMA {SCHEMA}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{separator}options=-csearch_path%3D{SCHEMA}"
    migrate(url)
    yield url
    with admin.begin() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA {SCHEMA} CASCADE")
    admin.dispose()


@pytest.fixture(scope="module")
def engine(database_url: str) -> Iterator[Engine]:
    """The test's own view of the database, around the proxy."""
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def postgres(database_url: str) -> Iterator[Proxy]:
    proxy = proxy_for(database_url, 5432)
    yield proxy
    proxy.resume()
    proxy.cut()


@pytest.fixture(scope="module")
def redis_proxy() -> Iterator[Proxy]:
    assert REDIS_URL is not None
    proxy = proxy_for(REDIS_URL, 6379)
    yield proxy
    proxy.resume()
    proxy.cut()


@pytest.fixture(scope="module")
def environment(
    database_url: str, postgres: Proxy, redis_proxy: Proxy, own_redis_prefix: str
) -> dict[str, str]:
    assert REDIS_URL is not None
    return {
        **os.environ,
        "PYTHONPATH": str(CAPSTONE),
        "DATABASE_URL": through(postgres, database_url),
        "REDIS_URL": through(redis_proxy, REDIS_URL),
        "REDIS_PREFIX": own_redis_prefix,
        "SECRET_KEY": "run-faults-" + "k" * 32,
        "RUNS_IN_PROCESS": "false",
        "RUN_LEASE_SECONDS": str(LEASE_SECONDS),
        "WORKER_CONCURRENCY": "4",
        "OFFLINE_MODEL_DELAY": "0.1",  # a reply takes a second or two: time to be paused in
        "WEBHOOK_SECRET": "run-faults-webhooks",
        "WEBHOOK_ALLOW_PRIVATE": "true",  # the receiver is on this machine
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_API": "100000/minute",  # the test polls
    }


class Service:
    """The API and the workers, each a process; a fresh worker replaces one that was stopped."""

    def __init__(self, environment: dict[str, str], folder: Path) -> None:
        self.environment = environment
        self.folder = folder
        self.workers: list[subprocess.Popen[bytes]] = []

    def start(self, *arguments: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, *arguments],
            cwd=self.folder,
            env=self.environment,
            stderr=subprocess.DEVNULL,  # the faults make them log warnings: as they should
        )

    def add_worker(self) -> subprocess.Popen[bytes]:
        worker = self.start("-m", "task_api.runs.worker")
        self.workers.append(worker)
        return worker

    def holder(self, engine: Engine, run_id: int) -> subprocess.Popen[bytes]:
        """The worker process that holds the run now."""
        run = read(engine, run_id)
        assert run.lease_owner is not None
        pid = int(run.lease_owner.rsplit(":", 1)[1])
        return next(worker for worker in self.workers if worker.pid == pid)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [worker for worker in self.workers if worker.poll() is None]


@pytest.fixture(scope="module")
def service(
    environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    service = Service(environment, tmp_path_factory.mktemp("run_faults"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = service.start("-m", "uvicorn", "task_api.main:app", "--port", str(port))
    service.environment = {**environment, "API": f"http://127.0.0.1:{port}"}

    def ready() -> bool:
        assert api.poll() is None, "the API exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 60, "the API is ready")
        service.add_worker()
        service.add_worker()
        yield service
    finally:
        for process in [api, *service.workers]:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
                process.wait(timeout=60)


class Client:
    """One user of the API. Every answer must come within ANSWER_SECONDS and never be a 500;
    a 503 (a part is away) is retried, as a client should, with the same Idempotency-Key."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/api/v1", timeout=ANSWER_SECONDS)
        account = {"username": f"u{uuid.uuid4().hex[:12]}", "password": "a password for faults"}
        self.call("POST", "/auth/register", json=account)
        token = self.call("POST", "/auth/token", data=account).json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.unavailable = 0  # 503s seen

    def call(self, method: str, path: str, **options: Any) -> httpx.Response:
        while True:
            reply = self.http.request(method, path, **options)  # a hang fails here
            assert reply.status_code != 500, reply.text
            if reply.status_code != 503:
                reply.raise_for_status()
                return reply
            assert reply.headers["Retry-After"]
            self.unavailable += 1
            time.sleep(0.5)

    def start_runs(self, messages: list[str], webhook_url: str) -> list[int]:
        return [
            self.call(
                "POST",
                "/runs",
                json={"message": message, "webhook_url": webhook_url},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            ).json()["id"]
            for message in messages
        ]


def read(engine: Engine, run_id: int) -> AgentRun:
    with Session(engine) as session:
        run = session.get(AgentRun, run_id)
        assert run is not None
        return run


def events(engine: Engine, run_id: int) -> list[AgentRunEvent]:
    with Session(engine) as session:
        query = select(AgentRunEvent).where(AgentRunEvent.run_id == run_id)
        return list(session.exec(query.order_by(col(AgentRunEvent.id))))


def reached(engine: Engine, run_id: int, event_type: str) -> Callable[[], bool]:
    return lambda: any(event.type == event_type for event in events(engine, run_id))


def assert_each_final_once(engine: Engine, run_ids: list[int]) -> list[AgentRun]:
    """Every run ends, once: one final status; a `done` event and a saved turn only if it
    succeeded; and its final status reached its webhook exactly once."""
    wait_until(
        lambda: all(read(engine, run_id).status in FINAL_STATUSES for run_id in run_ids),
        120,
        "every run is final",
    )
    runs = [read(engine, run_id) for run_id in run_ids]
    for run in runs:
        assert run.id is not None
        kinds = Counter(event.type for event in events(engine, run.id))
        finals = [
            event
            for event in events(engine, run.id)
            if event.type == "status" and event.data["status"] in FINAL_STATUSES
        ]
        assert [event.data["status"] for event in finals] == [run.status], run
        succeeded = run.status == "succeeded"
        assert kinds["done"] == (1 if succeeded else 0), (run, kinds)
        with Session(engine) as session:
            turns = session.exec(
                select(func.count())
                .select_from(ConversationTurn)
                .join(Conversation)
                .where(Conversation.owner_id == run.owner_id, Conversation.title == run.message)
            ).one()
        assert turns == (1 if succeeded else 0), run
    wait_until(
        lambda: all(read(engine, run_id).webhook_done_at is not None for run_id in run_ids),
        120,
        "every webhook is done with",
    )
    delivered = Counter(
        (body["id"], body["status"]) for body in Receiver.received if body["id"] in run_ids
    )
    assert delivered == Counter((run.id, run.status) for run in runs)
    return runs


def paused(worker: subprocess.Popen[bytes], until: Callable[[], bool], what: str) -> None:
    """SIGSTOP the worker (a paused VM, a stop-the-world pause) until `until()`: past its
    lease, others take up its runs. Then SIGCONT: it must notice, and harm nothing."""
    worker.send_signal(signal.SIGSTOP)
    try:
        wait_until(until, 60, what)
    finally:
        worker.send_signal(signal.SIGCONT)


def test_a_worker_paused_past_its_lease_before_any_tool_call(
    service: Service, engine: Engine, webhook_url: str
) -> None:
    client = Client(service.environment["API"])
    [run_id] = client.start_runs(["Hello there, how are you today?"], webhook_url)
    wait_until(reached(engine, run_id, "delta"), 60, "its reply is being written")
    first = read(engine, run_id).attempt

    # Its reply is half written, its turn not yet saved: another worker does it again.
    paused(
        service.holder(engine, run_id),
        lambda: read(engine, run_id).status in FINAL_STATUSES,
        "another worker finishes the run",
    )

    [run] = assert_each_final_once(engine, [run_id])
    assert (run.status, run.attempt) == ("succeeded", first + 1)
    assert len(service.alive()) == len(service.workers)


def test_a_worker_paused_past_its_lease_after_a_tool_call(
    service: Service, engine: Engine, webhook_url: str
) -> None:
    client = Client(service.environment["API"])
    [run_id] = client.start_runs(["Add a task to water the plants"], webhook_url)
    wait_until(reached(engine, run_id, "tool_output"), 60, "its tool call is done")

    # Its task is made: doing the run again would make it twice. It is failed instead.
    paused(
        service.holder(engine, run_id),
        lambda: read(engine, run_id).status in FINAL_STATUSES,
        "the run is taken up",
    )

    [run] = assert_each_final_once(engine, [run_id])
    assert run.status == "failed" and "after it had called a tool" in (run.detail or "")
    titles = [task["title"] for task in client.call("GET", "/tasks").json()]
    assert titles == ["Water the plants"]  # made once, by the paused worker, before it paused
    assert len(service.alive()) == len(service.workers)


def test_a_worker_killed_or_stopped_mid_run(
    service: Service, engine: Engine, webhook_url: str
) -> None:
    client = Client(service.environment["API"])
    run_ids = client.start_runs(
        [f"Add a task to call friend {n}" for n in range(4)]
        + [f"Hello, this is message number {n}" for n in range(4)],
        webhook_url,
    )
    wait_until(lambda: read(engine, run_ids[0]).lease_owner, 60, "a worker takes the first run")
    killed = service.holder(engine, run_ids[0])
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    service.workers.remove(killed)
    service.add_worker()  # as the operator's supervisor does
    wait_until(lambda: read(engine, run_ids[-1]).lease_owner, 60, "a worker takes the last run")
    stopped = service.holder(engine, run_ids[-1])
    stopped.terminate()  # SIGTERM: it finishes its runs or hands them back, then exits

    assert stopped.wait(timeout=60) == 0
    service.workers.remove(stopped)
    service.add_worker()
    assert_each_final_once(engine, run_ids)
    assert len(service.alive()) == len(service.workers) == 2


def while_broken(proxy: Proxy, break_it: str, client: Client, run_ids: list[int]) -> None:
    """Break the proxy (cut or stall) for FAULT_SECONDS, using the API all the while."""
    getattr(proxy, break_it)()
    broken_until = time.monotonic() + FAULT_SECONDS
    try:
        while time.monotonic() < broken_until:
            for run_id in run_ids:
                reply = client.http.get(f"/runs/{run_id}")  # within ANSWER_SECONDS, or fails
                assert reply.status_code in (200, 503), reply.text
    finally:
        proxy.restore() if break_it == "cut" else proxy.resume()


@pytest.mark.parametrize("break_it", ["cut", "stall"])
def test_the_database_away_for_a_while(
    service: Service, engine: Engine, webhook_url: str, postgres: Proxy, break_it: str
) -> None:
    client = Client(service.environment["API"])
    run_ids = client.start_runs(
        [f"Add a task to paint wall {n}" for n in range(3)]
        + [f"Hello, this is greeting number {n}" for n in range(3)],
        webhook_url,
    )
    wait_until(lambda: read(engine, run_ids[0]).lease_owner, 60, "the runs are going")

    while_broken(postgres, break_it, client, run_ids)

    assert_each_final_once(engine, run_ids)
    assert len(service.alive()) == len(service.workers)  # they waited it out
    # And the service is whole again: new runs go through.
    assert_each_final_once(engine, client.start_runs(["Hello again"], webhook_url))


@pytest.mark.parametrize("break_it", ["cut", "stall"])
def test_redis_away_for_a_while(
    service: Service, engine: Engine, webhook_url: str, redis_proxy: Proxy, break_it: str
) -> None:
    client = Client(service.environment["API"])
    run_ids = client.start_runs([f"Add a task to mop floor {n}" for n in range(4)], webhook_url)

    while_broken(redis_proxy, break_it, client, run_ids)

    runs = assert_each_final_once(engine, run_ids)
    assert {run.status for run in runs} == {"succeeded"}  # Redis is a help, not a need
    assert client.unavailable == 0
    assert len(service.alive()) == len(service.workers)
