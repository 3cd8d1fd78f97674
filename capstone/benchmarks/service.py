"""What the full stack costs on plain requests, and whether logins can slow the rest. A benchmark.

crud:   task create, read, change and delete, by --clients clients at once for --seconds,
        through the capstone (login token, rate limits, service, repository, access log,
        request ids) and through `bare` (benchmarks/floor.py): the same SQL on the same
        SQLite file set-up, in four plain routes with nothing else. The two take turns,
        --rounds times, so that a busier moment of the machine falls on both alike.
health: `/health`'s latency (p50, p99) while --clients clients log in as fast as the
        capstone lets them (Argon2 hashing is slow on purpose: about 50 ms of CPU each).

    python benchmarks/service.py
    python benchmarks/service.py --seconds 10 --rounds 5 --clients 16
"""

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
from chats import CAPSTONE, cpu_seconds, free_port, serving

API = "/api/v1"


def start(app: str, database: Path) -> tuple[list[str], dict[str, str], int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{database}",
        "PYTHONPATH": str(CAPSTONE),
        "LOG_LEVEL": "WARNING",
    }
    if app == "capstone":
        env |= {
            "SECRET_KEY": secrets.token_urlsafe(32),
            # The limits protect a real service; here they would only measure themselves.
            "RATE_LIMIT_API": "1000000/minute",
            "RATE_LIMIT_LOGIN": "1000000/minute",
        }
        target = ["task_api.main:app"]
    else:
        target = ["floor:bare", "--app-dir", str(CAPSTONE / "benchmarks")]
    command = [sys.executable, "-m", "uvicorn", *target, "--port", str(port)]
    return [*command, "--log-level", "warning", "--no-access-log"], env, port


async def log_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    account = {"username": username, "password": "benchmark-password"}
    (await client.post(f"{API}/auth/register", json=account)).raise_for_status()
    token = (await client.post(f"{API}/auth/token", data=account)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def crud_loop(
    client: httpx.AsyncClient, prefix: str, headers: dict[str, str], until: float
) -> int:
    """Create, read, change, delete one task after another; the number of requests made."""
    done = 0
    while time.perf_counter() < until:
        made = await client.post(f"{prefix}/tasks", json={"title": f"t{done}"}, headers=headers)
        made.raise_for_status()
        url = f"{prefix}/tasks/{made.json()['id']}"
        (await client.get(url, headers=headers)).raise_for_status()
        changed = await client.patch(url, json={"status": "completed"}, headers=headers)
        changed.raise_for_status()
        (await client.delete(url, headers=headers)).raise_for_status()
        done += 4
    return done


@dataclass
class Round:
    rate: float  # requests per second
    cpu: float | None  # seconds of the app process's CPU per request


async def crud(
    servers: dict[str, tuple[str, int]], clients: int, seconds: float, rounds: int
) -> dict[str, list[Round]]:
    """Each app's requests per second, in turns (round after round, app after app), so that
    a busier moment of a shared machine falls on every app alike."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    results: dict[str, list[Round]] = {app: [] for app in servers}
    async with AsyncExitStack() as stack:
        users = {}
        for app, (url, _pid) in servers.items():
            client = httpx.AsyncClient(base_url=url, timeout=60, limits=limits)
            await stack.enter_async_context(client)
            if app == "capstone":
                prefix = API
                headers = [await log_in(client, f"user{n}") for n in range(clients)]
            else:
                prefix, headers = "", [{}] * clients
            await crud_loop(client, prefix, headers[0], time.perf_counter() + 1)  # warm up
            users[app] = client, prefix, headers
        for _ in range(rounds):
            for app, (client, prefix, headers) in users.items():
                pid = servers[app][1]
                cpu_before, started = cpu_seconds(pid), time.perf_counter()
                counts = await asyncio.gather(
                    *(crud_loop(client, prefix, h, started + seconds) for h in headers)
                )
                elapsed, cpu_after = time.perf_counter() - started, cpu_seconds(pid)
                requests = sum(counts)
                cpu = None
                if cpu_before is not None and cpu_after is not None:
                    cpu = (cpu_after - cpu_before) / requests
                results[app].append(Round(requests / elapsed, cpu))
    return results


async def health_under_logins(url: str, clients: int, seconds: float) -> tuple[float, float, int]:
    """/health p50 and p99 in seconds while `clients` clients log in again and again."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        account = {"username": "logins", "password": "benchmark-password"}
        (await client.post(f"{API}/auth/register", json=account)).raise_for_status()
        until = time.perf_counter() + seconds
        logins = 0

        async def log_in_again() -> None:
            nonlocal logins
            while time.perf_counter() < until:
                (await client.post(f"{API}/auth/token", data=account)).raise_for_status()
                logins += 1

        async def probe() -> list[float]:
            times = []
            while time.perf_counter() < until:
                started = time.perf_counter()
                (await client.get("/health")).raise_for_status()
                times.append(time.perf_counter() - started)
                await asyncio.sleep(0.01)
            return times

        *_, times = await asyncio.gather(*(log_in_again() for _ in range(clients)), probe())
    times.sort()
    return statistics.median(times), times[int(0.99 * (len(times) - 1))], logins


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def ms(rounds: list[Round]) -> str:
    cpus = [r.cpu for r in rounds if r.cpu is not None]
    return f"{median(cpus) * 1000:7.2f} ms" if cpus else "       n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    print(f"{os.cpu_count()} CPUs; client and app share them; SQLite; {args.clients} clients\n")
    with tempfile.TemporaryDirectory() as name, ExitStack() as servers:
        folder = Path(name)
        apps = {}
        for app in ("capstone", "bare"):
            command, env, port = start(app, folder / f"{app}.db")
            pid = servers.enter_context(serving(command, port, env, folder))
            apps[app] = f"http://127.0.0.1:{port}", pid
        results = asyncio.run(crud(apps, args.clients, args.seconds, args.rounds))
        command, env, port = start("capstone", folder / "logins.db")
        servers.enter_context(serving(command, port, env, folder))
        p50, p99, logins = asyncio.run(
            health_under_logins(f"http://127.0.0.1:{port}", args.clients, args.seconds)
        )
    capstone, bare = results["capstone"], results["bare"]
    print(f"task CRUD (create, read, change, delete), {args.rounds} rounds of {args.seconds:g} s")
    print("                     requests/s: median (each round)    app CPU per request")
    for app, rounds in results.items():
        rates = " ".join(f"{r.rate:.0f}" for r in rounds)
        print(f"  {app:17} {median(r.rate for r in rounds):8.0f}   ({rates:15})  {ms(rounds)}")
    ratios = " ".join(f"{c.rate / b.rate:.2f}" for c, b in zip(capstone, bare, strict=True))
    rate_ratio = median(c.rate / b.rate for c, b in zip(capstone, bare, strict=True))
    cpu_ratio = ""
    if all(r.cpu for r in capstone + bare):
        cpu_ratio = f"{median(c.cpu / b.cpu for c, b in zip(capstone, bare, strict=True)):.2f}x"  # type: ignore[operator]
    print(f"  capstone / bare   {rate_ratio:8.2f}x  ({ratios:15})  {cpu_ratio:>10}\n")
    print(f"/health while {args.clients} clients log in ({logins / args.seconds:.0f} logins/s)")
    print(f"  p50 {p50 * 1000:.1f} ms   p99 {p99 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
