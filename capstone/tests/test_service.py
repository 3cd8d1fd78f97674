"""What every request gets: request ids, error bodies, the body limit, CORS; and /, /health,
/ready and the docs."""

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import settings_for
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from task_api.config import Settings
from task_api.database import create_db_engine
from task_api.main import create_app

CAPSTONE = Path(__file__).resolve().parent.parent

JSON = {"Content-Type": "application/json"}


def test_the_page_is_served_at_the_root(service_client: TestClient) -> None:
    page = service_client.get("/")
    script = service_client.get("/static/app.js")

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "<h1>TaskManager</h1>" in page.text
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert script.status_code == 200
    assert "/agent/chat/stream" in script.text


def test_health_is_ok(service_client: TestClient) -> None:
    assert service_client.get("/health").json() == {"status": "ok"}


def test_ready_when_the_database_answers(service_client: TestClient) -> None:
    assert service_client.get("/ready").json() == {"status": "ready"}


def test_not_ready_when_the_database_does_not_answer(
    app: FastAPI, service_client: TestClient
) -> None:
    engine, app.state.engine = (
        app.state.engine,
        create_engine("postgresql+psycopg://x@127.0.0.1:1"),
    )
    try:
        response = service_client.get("/ready")
        health = service_client.get("/health")
    finally:
        app.state.engine = engine

    assert response.status_code == 503
    assert response.json()["detail"] == "The database does not answer"
    assert response.headers["Retry-After"] == "5"  # like every other 503
    assert health.status_code == 200  # alive, just not ready


def test_every_response_has_a_request_id(client: TestClient) -> None:
    first, second = client.get("/tasks"), client.get("/tasks/999")

    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]
    assert second.json() == {
        "detail": "Task 999 not found",
        "request_id": second.headers["X-Request-ID"],
    }


def test_a_short_printable_request_id_is_kept(client: TestClient) -> None:
    response = client.get("/tasks/999", headers={"X-Request-ID": "trace-42"})

    assert response.headers["X-Request-ID"] == "trace-42"
    assert response.json()["request_id"] == "trace-42"


@pytest.mark.parametrize("request_id", ["x" * 65, "tab\there", "ünïcode"])
def test_any_other_request_id_is_replaced(client: TestClient, request_id: str) -> None:
    response = client.get("/tasks", headers={"X-Request-ID": request_id.encode()})  # type: ignore[dict-item]

    assert response.headers["X-Request-ID"] not in ("", request_id)


def test_log_lines_carry_the_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    client.get("/tasks", headers={"X-Request-ID": "find-me"})

    [line] = [r for r in caplog.records if r.name == "task_api.access"]
    assert line.getMessage().startswith("GET /api/v1/tasks 200")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("get", "/nope", 404), ("delete", "/tasks", 405)],
)
def test_fastapis_own_errors_have_the_same_body(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path)

    assert response.status_code == status
    assert set(response.json()) == {"detail", "request_id"}


def test_an_unexpected_error_is_a_500_with_a_request_id(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")

    assert response.status_code == 500
    assert response.json() == {
        "detail": "Internal server error",
        "request_id": response.headers["X-Request-ID"],
    }


def test_a_body_declared_too_large_is_a_json_413(client: TestClient, settings: Settings) -> None:
    response = client.post("/tasks", content=b" " * (settings.max_body_bytes + 1), headers=JSON)

    assert response.status_code == 413
    assert response.json()["detail"] == "Content Too Large"


def test_a_body_up_to_the_limit_is_read(client: TestClient, settings: Settings) -> None:
    response = client.post("/tasks", content=b" " * settings.max_body_bytes, headers=JSON)

    assert response.status_code == 422  # read, and found not to be JSON


def test_a_chunked_body_too_large_is_a_json_413(client: TestClient, settings: Settings) -> None:
    def pieces() -> Any:
        for _ in range(3):
            yield b" " * (settings.max_body_bytes // 2)

    response = client.post("/tasks", content=pieces(), headers=JSON)

    assert response.status_code == 413
    assert response.json()["detail"] == "Content Too Large"


@pytest.fixture
def cors_client(database_url: str) -> Any:
    app = create_app(settings_for(database_url, cors_origins="https://app.example"))
    with TestClient(app) as client:
        yield client


def test_cors_lets_the_listed_origin_in(cors_client: TestClient) -> None:
    preflight = {
        "Origin": "https://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = cors_client.options("/api/v1/tasks", headers=preflight)
    refused = cors_client.options(
        "/api/v1/tasks", headers={**preflight, "Origin": "https://evil.example"}
    )

    assert allowed.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_no_origin_is_allowed_unless_listed(service_client: TestClient) -> None:
    response = service_client.get("/health", headers={"Origin": "https://app.example"})

    assert "Access-Control-Allow-Origin" not in response.headers


def test_docs_are_served(service_client: TestClient) -> None:
    assert service_client.get("/docs").status_code == 200
    assert service_client.get("/redoc").status_code == 200
    assert service_client.get("/openapi.json").json()["info"]["title"] == "Test API"


def test_production_may_turn_the_docs_off(database_url: str) -> None:
    app = create_app(settings_for(database_url, docs_enabled=False))

    with TestClient(app) as client:
        statuses = [client.get(path).status_code for path in ["/docs", "/redoc", "/openapi.json"]]

    assert statuses == [404, 404, 404]


def test_only_the_listed_hosts_are_answered(database_url: str) -> None:
    app = create_app(settings_for(database_url, allowed_hosts=["api.example.com"]))

    with TestClient(app, base_url="http://api.example.com") as client:
        listed = client.get("/health")
        forged = client.get("/health", headers={"Host": "evil.example"})

    assert listed.status_code == 200
    assert forged.status_code == 400


def test_no_query_string_reaches_the_log(settings: Settings) -> None:
    with TestClient(create_app(settings)):  # its lifespan sets up the logs
        pass
    [handler] = [h for h in logging.getLogger().handlers if h.filters]  # the app's
    # What uvicorn logs when a WebSocket opens, here with a key a client put in the URL.
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        0,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/api/v1/agent/ws?api_key=tm_leaked"),
        None,
    )

    assert handler.filter(record)
    logged = handler.format(record)
    assert '"WebSocket /api/v1/agent/ws" [accepted]' in logged
    assert "tm_leaked" not in logged


def test_fastapi_run_keeps_query_strings_out_of_the_log(tmp_path: Path) -> None:
    """`fastapi run`, as the README starts the app, sets up uvicorn's logging after it has
    built the app: the app's own set-up must still be the one in force."""
    port = free_port()
    log = tmp_path / "server.log"
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/tasks.db"}
    command = [str(Path(sys.executable).parent / "fastapi"), "run", "task_api/main.py"]
    with log.open("w") as output:
        server = subprocess.Popen(
            [*command, "--port", str(port)],
            cwd=CAPSTONE,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "GET /health 200" not in log.read_text():  # until it answered and logged it
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the server did not answer within 120 s"
            with contextlib.suppress(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/health?token=secret-in-a-url")
            time.sleep(0.2)
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert "secret-in-a-url" not in log.read_text()


def test_a_database_error_carries_no_value_of_the_query(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/tasks.db")

    with pytest.raises(OperationalError) as failed, engine.connect() as connection:
        connection.execute(text("INSERT INTO nowhere VALUES (:hash)"), {"hash": "$argon2id$x"})

    assert "$argon2id$x" not in str(failed.value)  # it reaches the log with the traceback
    engine.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
