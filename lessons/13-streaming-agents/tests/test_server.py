"""The app as a real server, for what only a socket shows: a body too large to read."""

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from task_api.main import MAX_BODY_SIZE

STAGE = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_answering(process: subprocess.Popen[bytes], port: int) -> None:
    """Return once the server answers an HTTP request; fail as soon as it exits instead."""
    # A last resort only: a busy machine can take long to start Python and import the app.
    deadline = time.monotonic() + 120
    while process.poll() is None:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                pytest.fail("the server neither answered nor exited within 120 s")
            time.sleep(0.05)
    pytest.fail(f"the server exited with code {process.returncode} before it answered")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """`uvicorn task_api.main:app` on a free port, on a database of its own; (host, port)."""
    port = free_port()
    # Started in a folder of its own, so it reads no .env and writes its tasks.db there.
    command = [sys.executable, "-m", "uvicorn", "task_api.main:app", "--app-dir", str(STAGE)]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path_factory.mktemp("server"),
        env=os.environ,
    )
    try:
        wait_until_answering(process, port)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=10)


def start_upload(address: tuple[str, int], length_header: str) -> socket.socket:
    """Open a connection and send the head of a POST /auth/register, and no body yet."""
    sock = socket.create_connection(address, timeout=10)
    head = [
        "POST /auth/register HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        length_header,
    ]
    sock.sendall("\r\n".join(head).encode() + b"\r\n\r\n")
    return sock


def chunk(size: int) -> bytes:
    """A piece of a `Transfer-Encoding: chunked` body."""
    return b"%x\r\n%s\r\n" % (size, b" " * size)


def response_of(sock: socket.socket) -> tuple[int, bytes]:
    """The status code and body of the response that comes back on this connection."""
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, response.read()


def test_a_body_declared_too_large_is_refused_before_it_is_sent(
    server: tuple[str, int],
) -> None:
    with start_upload(server, f"Content-Length: {50 * MAX_BODY_SIZE}") as sock:
        assert response_of(sock) == (413, b"Content Too Large")


def test_the_server_answers_others_while_a_large_body_arrives(
    server: tuple[str, int],
) -> None:
    with start_upload(server, "Transfer-Encoding: chunked") as sock:
        sock.sendall(chunk(MAX_BODY_SIZE // 2))  # half of what is allowed, so far

        health = httpx.get(f"http://{server[0]}:{server[1]}/health", timeout=10)
        assert health.status_code == 200

        sock.sendall(chunk(MAX_BODY_SIZE // 2 + 1))  # one byte past the limit
        assert response_of(sock) == (413, b'{"detail":"Content Too Large"}')
