"""Broken parts: the database or Redis going away under a running app, and coming back.

Each test puts a TCP proxy between the app and the real server (proxy.py) and cuts it (the
server restarts, the network drops) or stalls it (the server is paused: it takes
connections and answers nothing). test_run_faults.py does the same to workers in processes
of their own. (The model going wrong in every way is in test_chat.py; a client going away, in
test_chat.py, test_chat_ws.py and test_end_to_end.py.)
"""

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API, REDIS_URL, redis_prefix, settings_for
from fastapi.testclient import TestClient
from proxy import Proxy, proxy_for, through
from sqlalchemy.exc import TimeoutError as PoolTimeout

from task_api.database import create_db_engine
from task_api.events import Notifier, TaskEventBroker
from task_api.main import create_app
from task_api.runs.queue import RunQueue
from task_api.runs.worker import Worker


def log_in(client: TestClient) -> dict[str, str]:
    account = {"username": "faults", "password": "a password for faults"}
    assert client.post(f"{API}/auth/register", json=account).status_code == 201
    token = client.post(f"{API}/auth/token", data=account).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def postgres_proxy(isolated_database_url: str) -> Iterator[tuple[Proxy, str]]:
    if not isolated_database_url.startswith("postgresql"):
        pytest.skip("the database going away is tried on PostgreSQL")
    proxy = proxy_for(isolated_database_url, 5432)
    yield proxy, through(proxy, isolated_database_url)
    proxy.cut()


def test_the_database_going_away_is_503_until_it_returns(
    postgres_proxy: tuple[Proxy, str],
) -> None:
    proxy, url = postgres_proxy
    app = create_app(settings_for(url, runs_in_process=False))
    with TestClient(app) as client:
        headers = log_in(client)
        made = client.post(f"{API}/tasks", json={"title": "Survive"}, headers=headers)
        assert made.status_code == 201

        proxy.cut()
        assert client.get("/ready").status_code == 503
        assert client.get("/health").status_code == 200  # the process itself is fine
        for reply in (
            client.get(f"{API}/tasks", headers=headers),
            client.post(f"{API}/tasks", json={"title": "Lost"}, headers=headers),
            client.post(f"{API}/auth/token", data={"username": "faults", "password": "x" * 12}),
        ):
            assert reply.status_code == 503, reply.text
            assert reply.json()["detail"] == "The database does not answer"
            assert reply.headers["Retry-After"] == "5"

        proxy.restore()
        assert client.get("/ready").status_code == 200
        tasks = client.get(f"{API}/tasks", headers=headers).json()
        assert [task["title"] for task in tasks] == ["Survive"]  # nothing half-written


def answered_within(seconds: float, call: Callable[[], Any]) -> Any:
    """What `call` answers; fails if it takes longer than `seconds` (a hang)."""
    answer: list[Any] = []
    thread = threading.Thread(target=lambda: answer.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert answer, f"no answer within {seconds} s"
    return answer[0]


def test_a_stalled_database_is_503_not_a_hang_and_is_whole_again_when_it_answers(
    postgres_proxy: tuple[Proxy, str],
) -> None:
    proxy, url = postgres_proxy
    app = create_app(settings_for(url, runs_in_process=False))
    with TestClient(app) as client:
        headers = log_in(client)

        proxy.stall()  # connections taken, nothing answered: a paused server
        # Each answers within the client's wait for one answer (6 s) and a new connection's
        # (3 s): without them, a stalled server holds a request for as long as it stalls.
        for request in (
            lambda: client.get(f"{API}/tasks", headers=headers),
            lambda: client.post(f"{API}/tasks", json={"title": "Lost"}, headers=headers),
            lambda: client.get("/ready"),
        ):
            reply = answered_within(30, request)
            assert reply.status_code == 503, reply.text
            assert reply.headers["Retry-After"] == "5"

        proxy.resume()
        assert answered_within(30, lambda: client.get("/ready")).status_code == 200
        made = client.post(f"{API}/tasks", json={"title": "Back"}, headers=headers)
        assert made.status_code == 201
        tasks = client.get(f"{API}/tasks", headers=headers).json()
        assert [task["title"] for task in tasks] == ["Back"]  # the stalled write did not happen


def test_an_exhausted_pool_is_503_until_a_connection_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("task_api.database.POOL_TIMEOUT_SECONDS", 0.1)
    app = create_app(settings_for(f"sqlite:///{tmp_path}/tasks.db", runs_in_process=False))
    with TestClient(app) as client:
        headers = log_in(client)
        held = []
        with pytest.raises(PoolTimeout):  # someone holds every connection of the pool
            while True:
                held.append(app.state.engine.connect())

        reply = client.get(f"{API}/tasks", headers=headers)

        assert reply.status_code == 503, reply.text
        assert reply.json()["detail"] == "The database is too busy"
        assert reply.headers["Retry-After"] == "5"
        for connection in held:
            connection.close()
        assert client.get(f"{API}/tasks", headers=headers).status_code == 200


@pytest.mark.skipif(REDIS_URL is None, reason="needs Redis (set TEST_REDIS_URL)")
def test_redis_going_away_lets_requests_through_uncounted_until_it_returns(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert REDIS_URL is not None
    proxy = proxy_for(REDIS_URL, 6379)
    try:
        with (
            redis_prefix() as prefix,
            TestClient(
                create_app(
                    settings_for(
                        f"sqlite:///{tmp_path}/tasks.db",
                        redis_url=through(proxy, REDIS_URL),
                        redis_prefix=prefix,  # counters of its own: none counted before it starts
                        rate_limit_api="4/minute",
                    )
                )
            ) as client,
        ):
            headers = log_in(client)
            proxy.cut()
            # The limits protect the service: without Redis they are not counted, and no
            # request fails because of it (the documented rule, README "Scale out").
            for _ in range(6):
                assert client.get(f"{API}/tasks", headers=headers).status_code == 200
            assert "rate limits not counted, Redis failed" in capfd.readouterr().err
            assert client.get("/ready").json() == {"status": "ready", "redis": "unavailable"}

            proxy.restore()
            redis_back(client)
            codes = [client.get(f"{API}/tasks", headers=headers).status_code for _ in range(6)]
            assert codes == [200] * 4 + [429] * 2
    finally:
        proxy.cut()


def redis_back(client: TestClient) -> None:
    """Wait until the app uses Redis again: it leaves a failed Redis alone for a few seconds."""
    deadline = time.monotonic() + 30
    while client.get("/ready").json().get("redis") != "ok":
        assert time.monotonic() < deadline, "Redis not used again within 30 s"
        time.sleep(0.2)


@pytest.mark.skipif(REDIS_URL is None, reason="needs Redis (set TEST_REDIS_URL)")
def test_a_stalled_redis_costs_a_request_a_moment_and_no_error(tmp_path: Path) -> None:
    assert REDIS_URL is not None
    proxy = proxy_for(REDIS_URL, 6379)
    try:
        with (
            redis_prefix() as prefix,
            TestClient(
                create_app(
                    settings_for(
                        f"sqlite:///{tmp_path}/tasks.db",
                        redis_url=through(proxy, REDIS_URL),
                        redis_prefix=prefix,
                        rate_limit_api="1000/minute",
                    )
                )
            ) as client,
        ):
            headers = log_in(client)
            proxy.stall()  # Redis takes the commands and answers none

            # Without timeouts on Redis, the first of these waits for as long as Redis stalls.
            for _ in range(6):
                reply = answered_within(10, lambda: client.get(f"{API}/tasks", headers=headers))
                assert reply.status_code == 200
            ready = answered_within(10, lambda: client.get("/ready"))
            assert ready.json() == {"status": "ready", "redis": "unavailable"}

            proxy.resume()
            redis_back(client)
    finally:
        proxy.resume()
        proxy.cut()


def test_a_worker_waits_out_a_database_that_is_away(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("task_api.runs.worker.FIRST_RETRY_SECONDS", 0.01)
    settings = settings_for("postgresql://nobody@127.0.0.1:1/away")  # nothing listens there
    engine = create_db_engine(settings.database_url)
    queue = RunQueue(engine, Notifier(), settings.run_lease_seconds)
    tries = []
    recover = queue.recover
    monkeypatch.setattr(queue, "recover", lambda: tries.append(1) or recover())
    worker = Worker(settings, engine, queue, TaskEventBroker(engine, Notifier()), agents=None)  # type: ignore[arg-type]

    async def an_outage() -> None:
        stop = asyncio.Event()
        working = asyncio.create_task(worker.work(stop))
        while len(tries) < 5:  # it tries, and tries again ...
            assert not working.done(), "the worker died with the database"
            await asyncio.sleep(0.01)
        stop.set()  # ... until it is told to stop
        await working

    asyncio.run(an_outage())

    warnings = [r.getMessage() for r in caplog.records if r.name == "task_api.runs.worker"]
    assert [w for w in warnings if w.startswith("database unavailable")] == [
        "database unavailable (OperationalError): retrying until it answers"
    ]  # once, not at every try
    engine.dispose()
