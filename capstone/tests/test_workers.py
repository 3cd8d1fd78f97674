"""Background runs as an operator deploys them: an API process that only queues
(RUNS_IN_PROCESS=false), and two `python -m task_api.runs.worker` processes on PostgreSQL.
One worker is killed with SIGKILL in the middle of its runs."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import POSTGRES_URL
from sqlalchemy import Engine
from sqlmodel import Session, select

from course_shared.sse import parse_sse
from task_api.database import create_db_engine, migrate
from task_api.runs.models import AgentRun, RunStatus

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs PostgreSQL: set TEST_DATABASE_URL (CI does)"
)
CAPSTONE = Path(__file__).resolve().parent.parent
SCHEMA = "workers"
RUNS = 24


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
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
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def environment(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "workers-" + "k" * 32,
        "RUNS_IN_PROCESS": "false",
        "RUN_LEASE_SECONDS": "3",  # a dead worker's runs are taken up within seconds
        "WORKER_CONCURRENCY": "4",
        "OFFLINE_MODEL_DELAY": "0.02",  # each run takes a moment: long enough to be killed in
        "LOG_LEVEL": "WARNING",
        "RATE_LIMIT_API": "100000/minute",  # the tests poll
        "MAX_QUEUED_RUNS_PER_USER": "1000",  # one user queues dozens of runs at once
    }


def start(
    arguments: list[str], environment: dict[str, str], folder: Path
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *arguments], cwd=folder, env={**environment, "PYTHONPATH": str(CAPSTONE)}
    )


@pytest.fixture(scope="module")
def api(
    environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    port = free_port()
    folder = tmp_path_factory.mktemp("api")
    server = start(
        ["-m", "uvicorn", "task_api.main:app", "--port", str(port)], environment, folder
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30)

    def ready() -> bool:
        assert server.poll() is None, "the API exited"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, 60, "the API is ready")
        account = {"username": "alice", "password": "correct horse battery staple"}
        client.post("/auth/register", json=account).raise_for_status()
        token = client.post("/auth/token", data=account).json()["access_token"]
        client.headers["Authorization"] = f"Bearer {token}"
        yield client
    finally:
        server.terminate()
        server.wait(timeout=30)
        client.close()


@pytest.fixture
def workers(
    environment: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[subprocess.Popen[bytes]]]:
    folder = tmp_path_factory.mktemp("workers")
    processes = [start(["-m", "task_api.runs.worker"], environment, folder) for _ in range(2)]
    yield processes
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def runs_held_by(engine: Engine, pid: int) -> list[AgentRun]:
    with Session(engine) as session:
        held = select(AgentRun).where(
            AgentRun.status == RunStatus.RUNNING,
            AgentRun.lease_owner.endswith(f":{pid}"),  # type: ignore[union-attr]
        )
        return list(session.exec(held))


def test_every_run_ends_and_none_does_its_work_twice_when_a_worker_is_killed(
    api: httpx.Client, workers: list[subprocess.Popen[bytes]], engine: Engine
) -> None:
    queued = [
        api.post("/runs", json={"message": f"Plan project {n}"}).json()["id"] for n in range(RUNS)
    ]
    victim, survivor = workers
    wait_until(lambda: runs_held_by(engine, victim.pid), 60, "the first worker holds runs")

    interrupted = [run.id for run in runs_held_by(engine, victim.pid)]
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=10)

    finals = [api.get(f"/runs/{run_id}/result", params={"wait": 60}).json() for run_id in queued]
    assert [run["status"] for run in finals if run["status"] not in ("succeeded", "failed")] == []
    assert interrupted, "the killed worker held no run"
    for run in finals:
        if run["id"] in interrupted:
            assert run["attempt"] == 2 or "not retried" in (run["detail"] or ""), run
        else:
            assert run["status"] == "succeeded", run
    titles = Counter(task["title"] for task in api.get("/tasks", params={"limit": 100}).json())
    titles.update(
        t["title"] for t in api.get("/tasks", params={"limit": 100, "offset": 100}).json()
    )
    assert [title for title, count in titles.items() if count > 1] == []  # nothing done twice
    for run in finals:
        project = run["message"].removeprefix("Plan ").capitalize()
        made = [title for title in titles if title.startswith(f"{project}:")]
        if run["status"] == "succeeded":
            assert len(made) == 4, (run, made)
        events = parse_sse(api.get(f"/runs/{run['id']}/events").text)
        assert events[-1].event == "status"
        assert events[-1].json()["status"] == run["status"]
    assert survivor.poll() is None


def test_a_cancel_sent_to_the_api_stops_a_run_in_a_worker(
    api: httpx.Client, workers: list[subprocess.Popen[bytes]], engine: Engine
) -> None:
    run_id = api.post("/runs", json={"message": "Plan a long journey"}).json()["id"]
    wait_until(
        lambda: api.get(f"/runs/{run_id}").json()["status"] == "running", 30, "the run runs"
    )

    assert api.post(f"/runs/{run_id}/cancel").status_code == 202

    run = api.get(f"/runs/{run_id}/result", params={"wait": 30}).json()
    assert (run["status"], run["detail"]) == ("cancelled", "Cancelled while it ran")
    made = [
        t
        for t in api.get("/tasks", params={"limit": 100}).json()
        if t["title"].startswith("A long journey")
    ]
    assert len(made) < 4


def test_workers_stop_gracefully_on_sigterm(
    api: httpx.Client, workers: list[subprocess.Popen[bytes]], engine: Engine
) -> None:
    queued = [
        api.post("/runs", json={"message": f"Plan a trip to city {n}"}).json()["id"]
        for n in range(16)
    ]
    wait_until(
        lambda: all(runs_held_by(engine, worker.pid) for worker in workers), 60, "both work"
    )

    for worker in workers:
        worker.terminate()  # SIGTERM: each finishes its runs (or hands them back), then exits
    codes = [worker.wait(timeout=60) for worker in workers]

    assert codes == [0, 0]
    statuses = {api.get(f"/runs/{run_id}").json()["status"] for run_id in queued}
    assert statuses <= {"succeeded", "queued"}  # none left running, none failed
