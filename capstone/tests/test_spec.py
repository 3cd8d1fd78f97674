"""The spec (`spec/`) passes against the capstone, served as its README says."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CAPSTONE = Path(__file__).resolve().parent.parent
LIMITS_FOR_THE_SPEC = {
    "RATE_LIMIT_REGISTER": "1000/hour",
    "RATE_LIMIT_LOGIN": "1000/minute",
    "RATE_LIMIT_API": "10000/minute",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_capstone_passes_its_spec(tmp_path: Path) -> None:
    port = free_port()
    environment = {
        **os.environ,
        **LIMITS_FOR_THE_SPEC,
        "DATABASE_URL": f"sqlite:///{tmp_path}/spec.db",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "task_api.main:app", "--port", str(port)],
        cwd=CAPSTONE,
        env=environment,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # until it answers, or exits
            assert server.poll() is None, "the server exited"
            try:
                httpx.get(f"http://127.0.0.1:{port}/ready")
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the server did not answer in 120 s"
                time.sleep(0.1)
        base_url = f"http://127.0.0.1:{port}"
        spec = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "spec",
                "-q",
                "-p",
                "no:cacheprovider",
                "--base-url",
                base_url,
            ],
            cwd=CAPSTONE,
            capture_output=True,
            text=True,
        )
        assert spec.returncode == 0, spec.stdout[-3000:]
    finally:
        server.terminate()
        server.wait(timeout=30)
