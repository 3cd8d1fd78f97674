"""How many streamed chats can the app serve at once? A benchmark, not a test.

It starts two processes on 127.0.0.1: the stand-in OpenAI server (from shared/), whose every
answer waits FIRST_TOKEN_DELAY before its first token, and this lesson's app, on a fresh
SQLite file, pointed at the stand-in. Each chat makes two model calls (a `list_tasks` tool
call, then the answer), so one chat spends 2 x FIRST_TOKEN_DELAY waiting on the model.

It times one chat alone, then N chats at once, and prints both against that model time.
If the app served chats one after another, N chats would take N times as long. On Linux it
also prints the CPU time each process spent on the N chats: when the wall time is well above
the model time, that says where it went.

    python benchmarks/concurrent_chats.py --chats 100 --first-token-delay 0.3
"""

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from course_shared.sse import aiter_sse

STAGE = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) a process has used so far; None where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited early with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after 30 s")


async def one_chat(client: httpx.AsyncClient, headers: dict[str, str]) -> float:
    """One streamed chat, read to its `done` event; its wall time in seconds."""
    started = time.perf_counter()
    body = {"message": "What is still pending?"}
    async with client.stream("POST", "/agent/chat/stream", json=body, headers=headers) as reply:
        reply.raise_for_status()
        async for event in aiter_sse(reply.aiter_lines()):
            if event.event == "error":
                raise RuntimeError(event.data)
            if event.event == "done":
                return time.perf_counter() - started
    raise RuntimeError("the stream ended without a done event")


@dataclass
class Figures:
    alone: float  # wall time of one chat, in seconds
    together: float  # wall time of all the chats at once
    each: list[float]  # wall time of each of those chats
    cpu: dict[str, float | None]  # CPU time each process spent on the chats at once


async def measure(base_url: str, chats: int, servers: dict[str, int]) -> Figures:
    limits = httpx.Limits(max_connections=chats + 10, max_keepalive_connections=chats + 10)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
        account = {"username": "bench", "password": "benchmark-password"}
        (await client.post("/auth/register", json=account)).raise_for_status()
        token = (await client.post("/auth/token", data=account)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        (
            await client.post("/tasks", json={"title": "Buy milk"}, headers=headers)
        ).raise_for_status()

        await one_chat(client, headers)  # warm up: imports, first connections
        alone = await one_chat(client, headers)

        cpu_before = {name: cpu_seconds(pid) for name, pid in servers.items()}
        client_cpu_before = time.process_time()
        started = time.perf_counter()
        each = await asyncio.gather(*(one_chat(client, headers) for _ in range(chats)))
        together = time.perf_counter() - started
        cpu: dict[str, float | None] = {
            "benchmark client": time.process_time() - client_cpu_before
        }
        for name, pid in servers.items():
            before, after = cpu_before[name], cpu_seconds(pid)
            cpu[name] = after - before if after is not None and before is not None else None
    return Figures(alone, together, list(each), cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    args = parser.parse_args()

    standin_port, app_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{data}/bench.db",
            "AGENT_MODEL": "standin",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{standin_port}/v1",
            "OPENAI_API_KEY": "benchmark",
            "SECRET_KEY": secrets.token_urlsafe(32),
            # The limits protect a real service; here they would only measure themselves.
            "RATE_LIMIT_API": "1000000/minute",
            "RATE_LIMIT_LOGIN": "1000000/minute",
        }
        standin_command = [
            sys.executable, "-m", "course_shared.openai_standin", "--port", str(standin_port),
            "--first-token-delay", str(args.first_token_delay), "--tool-call", "list_tasks",
            "--quiet",
        ]  # fmt: skip
        app_command = [
            sys.executable, "-m", "uvicorn", "task_api.main:app", "--app-dir", str(STAGE),
            "--port", str(app_port), "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        servers = [
            subprocess.Popen(standin_command, env=env, cwd=data),
            # Started in the data folder, so that your .env does not change what is measured.
            subprocess.Popen(app_command, env=env, cwd=data),
        ]
        try:
            wait_until_listening(standin_port, servers[0])
            wait_until_listening(app_port, servers[1])
            pids = {"stand-in model server": servers[0].pid, "app": servers[1].pid}
            figures = asyncio.run(measure(f"http://127.0.0.1:{app_port}", args.chats, pids))
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=10)

    model_time = 2 * args.first_token_delay
    alone, together, each = figures.alone, figures.together, figures.each
    print(f"model time of one chat (2 calls x {args.first_token_delay:g} s): {model_time:.2f} s")
    print(f"one chat alone:                 {alone:.2f} s")
    print(f"{args.chats} chats at once, all done in: {together:.2f} s")
    print(f"  each chat, median / slowest:  {statistics.median(each):.2f} s / {max(each):.2f} s")
    print(f"  {args.chats} chats / one chat alone:  {together / alone:.2f}x")
    print(f"  {args.chats} chats / model time:      {together / model_time:.2f}x")
    print(f"CPU time spent on the {args.chats} chats ({os.cpu_count()} CPUs here):")
    for name, seconds in figures.cpu.items():
        if seconds is None:
            print(f"  {name}: not measured here (no /proc)")
        else:
            per_chat = seconds / args.chats * 1000
            print(f"  {name + ':':23}{seconds:5.2f} s, {per_chat:4.1f} ms per chat")


if __name__ == "__main__":
    main()
