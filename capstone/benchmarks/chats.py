"""How many streamed chats can one process serve at once, and at what cost? A benchmark.

It starts the stand-in OpenAI server (from shared/: first token after --first-token-delay,
a tool call, then the answer) and, one after the other, three apps pointed at it, each on
one uvicorn process:

- capstone: the full stack: a login token, rate limits, the database (SQLite on a fresh
  file), the conversation, the Agents SDK, the triage agent handing off to the Reporter;
- floor:    the same two model calls through a thin route and one shared AsyncOpenAI
            client (benchmarks/floor.py): what Python needs, at least;
- sdk:      the same two model calls through the Agents SDK (a triage agent handing off
            to a Reporter) in a thin route: what the SDK needs, at least;
- naive:    the synchronous OpenAI client inside `async def`, as tutorials often show.

For each, and each number of chats at once, it prints the wall time until all are done,
the time to each chat's first delta (median and 95th percentile), and the CPU time the
app's process spent per chat (from /proc; Linux only).

    python benchmarks/chats.py                       # 1, 100 and 500 chats, each app
    python benchmarks/chats.py --chats 100 --apps capstone floor
    python benchmarks/chats.py --chats 100 --reply-words 200    # what each delta costs
    python benchmarks/chats.py --api responses --apps capstone sdk floor   # OpenAI's path

`--api` picks the model API every app uses, as the capstone's OPENAI_API does:
`chat_completions` (Ollama, vLLM and the like) or `responses` (what the capstone uses with
OpenAI itself). `--agent-concurrency` sets the capstone's AGENT_CONCURRENCY.
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from course_shared.sse import aiter_sse

CAPSTONE = Path(__file__).resolve().parent.parent
MESSAGE = "What is still pending?"


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
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"a server exited early with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on port {port} after 60 s")


@contextmanager
def serving(command: list[str], port: int, env: dict[str, str], cwd: Path) -> Iterator[int]:
    """Start a server; yield its pid; stop it."""
    process = subprocess.Popen(command, env=env, cwd=cwd)
    try:
        wait_until_listening(port, process)
        yield process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


@dataclass
class Chat:
    first_delta: float  # seconds from the request to the first piece of the reply
    total: float
    refused: int  # 503s answered before it was served (each retried after Retry-After)


@dataclass
class Figures:
    app: str
    chats: int
    wall: float
    first_delta_p50: float
    first_delta_p95: float
    cpu_per_chat: float | None  # seconds of the app process's CPU, per chat
    failed: int
    refused: int  # 503s, each retried after its Retry-After: slower, not failed


async def one_chat(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> Chat:
    """One chat, as a well-behaved client makes it: a 503 is tried again after its
    Retry-After, and the wait counts in the chat's times."""
    started = time.perf_counter()
    first_delta = None
    refused = 0
    while first_delta is None:
        async with client.stream(
            "POST", path, json={"message": MESSAGE}, headers=headers
        ) as reply:
            if reply.status_code == 503:
                refused += 1
                await asyncio.sleep(float(reply.headers.get("Retry-After", "1")))
                continue
            reply.raise_for_status()
            async for event in aiter_sse(reply.aiter_lines()):
                if event.event == "delta" and first_delta is None:
                    first_delta = time.perf_counter() - started
                if event.event == "error":
                    raise RuntimeError(event.data)
                if event.event == "done":
                    break
            if first_delta is None:
                raise RuntimeError("no delta")
    return Chat(first_delta, time.perf_counter() - started, refused)


async def measure(app: str, url: str, pid: int, counts: list[int]) -> list[Figures]:
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        headers: dict[str, str] = {}
        path = "/chat/stream"
        if app == "capstone":
            path = "/api/v1/agent/chat/stream"
            account = {"username": "bench", "password": "benchmark-password"}
            (await client.post("/api/v1/auth/register", json=account)).raise_for_status()
            token = (await client.post("/api/v1/auth/token", data=account)).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):  # warm up: imports, first connections, caches
            await one_chat(client, path, headers)
        figures = []
        for count in counts:
            before = cpu_seconds(pid)
            started = time.perf_counter()
            results = await asyncio.gather(
                *(one_chat(client, path, headers) for _ in range(count)), return_exceptions=True
            )
            wall = time.perf_counter() - started
            after = cpu_seconds(pid)
            chats = [r for r in results if isinstance(r, Chat)]
            firsts = sorted(c.first_delta for c in chats) or [float("nan")]
            figures.append(
                Figures(
                    app=app,
                    chats=count,
                    wall=wall,
                    first_delta_p50=statistics.median(firsts),
                    first_delta_p95=firsts[min(len(firsts) - 1, int(0.95 * len(firsts)))],
                    cpu_per_chat=(after - before) / count
                    if after is not None and before is not None
                    else None,
                    failed=count - len(chats),
                    refused=sum(c.refused for c in chats),
                )
            )
    return figures


def run_app(
    app: str, counts: list[int], standin_url: str, api: str, agent_concurrency: int | None
) -> list[Figures]:
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        env = {
            **os.environ,
            "OPENAI_BASE_URL": standin_url,
            "OPENAI_API_KEY": "benchmark",
            "OPENAI_API": api,
            "AGENT_MODEL": "standin",
        }
        if agent_concurrency is not None:
            env["AGENT_CONCURRENCY"] = str(agent_concurrency)
        if app == "capstone":
            env |= {
                "DATABASE_URL": f"sqlite:///{data}/bench.db",
                "SECRET_KEY": secrets.token_urlsafe(32),
                # The limits protect a real service; here they would only measure themselves.
                "RATE_LIMIT_API": "1000000/minute",
                "LOG_LEVEL": "WARNING",
                "PYTHONPATH": str(CAPSTONE),
            }
            target = ["task_api.main:app"]
        else:
            target = [f"floor:{app}", "--app-dir", str(CAPSTONE / "benchmarks")]
        command = [sys.executable, "-m", "uvicorn", *target, "--port", str(port)]
        command += ["--log-level", "warning", "--no-access-log"]
        with serving(command, port, env, Path(data)) as pid:
            return asyncio.run(measure(app, f"http://127.0.0.1:{port}", pid, counts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, nargs="+", default=[1, 100, 500])
    parser.add_argument("--apps", nargs="+", default=["capstone", "sdk", "floor", "naive"])
    parser.add_argument("--first-token-delay", type=float, default=0.3)
    parser.add_argument(
        "--reply-words", type=int, help="a longer answer: this many words, one delta each"
    )
    parser.add_argument(
        "--api", choices=["chat_completions", "responses"], default="chat_completions"
    )
    parser.add_argument("--agent-concurrency", type=int, help="the capstone's AGENT_CONCURRENCY")
    args = parser.parse_args()

    standin_port = free_port()
    standin = [
        sys.executable, "-m", "course_shared.openai_standin", "--port", str(standin_port),
        "--first-token-delay", str(args.first_token_delay),
        # The capstone's triage hands off to the Reporter; the floor's one tool is list_tasks.
        "--tool-call", "transfer_to_reporter|list_tasks", "--quiet",
    ]  # fmt: skip
    if args.reply_words:
        standin += ["--reply", " ".join(["word"] * args.reply_words)]
    with serving(standin, standin_port, dict(os.environ), CAPSTONE):
        url = f"http://127.0.0.1:{standin_port}/v1"
        results = [
            f
            for app in args.apps
            for f in run_app(app, args.chats, url, args.api, args.agent_concurrency)
        ]

    model_time = 2 * args.first_token_delay
    print(f"model API: {args.api}")
    print(f"model time of one chat: 2 calls x {args.first_token_delay:g} s = {model_time:.2f} s")
    print(f"{os.cpu_count()} CPUs; client, stand-in and app share them\n")
    print("app        chats   all done   first delta p50 / p95   app CPU per chat   failed   503s")
    for f in results:
        cpu = f"{f.cpu_per_chat * 1000:6.1f} ms" if f.cpu_per_chat is not None else "    n/a"
        first = f"{f.first_delta_p50:6.2f} s / {f.first_delta_p95:5.2f} s"
        print(
            f"{f.app:9} {f.chats:6} {f.wall:9.2f} s   {first}       {cpu}        {f.failed}"
            f"   {f.refused:5}"
        )
    by = {(f.app, f.chats): f for f in results}
    print()
    for count in dict.fromkeys(args.chats):
        for app, base in (("capstone", "floor"), ("capstone", "sdk"), ("sdk", "floor")):
            a, b = by.get((app, count)), by.get((base, count))
            if a and b and a.cpu_per_chat and b.cpu_per_chat:
                print(
                    f"{count} chats, {app} / {base}: wall {a.wall / b.wall:.2f}x, "
                    f"CPU per chat {a.cpu_per_chat / b.cpu_per_chat:.2f}x, "
                    f"first delta p50 {a.first_delta_p50 / b.first_delta_p50:.2f}x"
                )


if __name__ == "__main__":
    main()
