"""The page at /, in a real browser: headless Chromium (Debian's), driven by Playwright.

Nothing here downloads a browser: it uses the one at CHROMIUM (default /usr/bin/chromium),
and is skipped, saying why, where there is none. A screenshot of the page is written to
SCREENSHOT when that is set (the README's: SCREENSHOT=docs/page.png pytest tests/test_page.py).
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

playwright = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright (pip install playwright)"
)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CAPSTONE = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"no Chromium at {CHROMIUM} (Debian: apt install chromium)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The capstone as `fastapi run` would serve it: SQLite, the offline model, a worker inside."""
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": str(CAPSTONE),
        "OFFLINE_MODEL_DELAY": "0.01",  # the reply streams in, as a real model's does
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "task_api.main:app", "--port", str(port)],
        cwd=tmp_path_factory.mktemp("page"),  # its own tasks.db, no .env
        env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "the server exited"
            try:
                if httpx.get(f"{url}/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            # No sandbox (CI runs as root), no GPU, and no calls home on a closed network.
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def test_register_chat_watch_the_tasks_and_run_in_the_background(
    server: str, browser: object
) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 800})  # type: ignore[attr-defined]
    expect = playwright.expect
    page.goto(server)
    expect(page.locator("#workspace")).to_be_hidden()  # nothing to use before signing in

    # Register.
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Register").click()
    expect(page.locator("#who")).to_have_text("alice")

    # Chat: the handoff, the tool call, the reply, and the new task beside them.
    page.get_by_label("Message").fill("Add a high priority task to buy milk")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#messages .handoff")).to_have_text("TaskManager hands over to Clerk")
    expect(page.locator("#messages .tool.done")).to_contain_text('create_task(title: "Buy milk"')
    expect(page.locator("#messages .assistant")).to_contain_text('Added task 1 "Buy milk"')
    expect(page.locator("#task-list li")).to_have_text(["#1 Buy milkpendinghigh"])

    # A reload keeps you signed in, and reopens the conversation from the server (once the
    # turn is done: its `done` event names the conversation, the reply's title its agent).
    expect(page.locator("#messages .assistant")).to_have_attribute("title", re.compile("^Clerk"))
    page.reload()
    expect(page.locator("#messages .user")).to_have_text(["Add a high priority task to buy milk"])
    expect(page.locator("#messages .assistant")).to_contain_text('Added task 1 "Buy milk"')

    # A background run: its progress bar fills, the tasks appear, it succeeds.
    page.get_by_label("Message").fill("Plan my week")
    page.get_by_role("button", name="Run in background").click()
    run = page.locator("#runs li").first
    expect(run).to_have_class("status-succeeded", timeout=30_000)
    expect(run.locator("progress")).to_have_attribute("value", "100")
    expect(page.locator("#task-list li")).to_have_count(5)

    if screenshot := os.environ.get("SCREENSHOT"):
        page.screenshot(path=screenshot)
    page.close()


def test_a_deletion_waits_for_approve_or_reject(server: str, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 800})  # type: ignore[attr-defined]
    expect = playwright.expect
    page.goto(server)
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Register").click()
    page.get_by_label("Message").fill("Add a task to buy bread")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#task-list li")).to_have_count(1)
    task_id = page.locator("#task-list li").first.get_attribute("data-id")

    # The agents ask first; rejected, the task stays, and they say so.
    page.get_by_label("Message").fill(f"delete task {task_id}")
    page.get_by_role("button", name="Send").click()
    asking = page.locator("#messages .approval").last
    expect(asking).to_contain_text(f"Clerk asks to delete_task(task_id: {task_id})")
    asking.get_by_role("button", name="Reject").click()
    expect(asking).to_have_class(re.compile("rejected"))
    expect(page.locator("#messages .assistant").last).to_contain_text("could not delete")
    expect(page.locator("#task-list li")).to_have_count(1)

    # Approved, it is deleted, and the list follows.
    page.get_by_label("Message").fill(f"delete task {task_id}")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#messages .approval")).to_have_count(2)
    page.locator("#messages .approval").last.get_by_role("button", name="Approve").click()
    expect(page.locator("#messages .assistant").last).to_have_text(f"Deleted task {task_id}.")
    expect(page.locator("#task-list li")).to_have_count(0)

    # A background run waits too, and goes on once approved.
    page.get_by_label("Message").fill("Add a task to call mum")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#task-list li")).to_have_count(1)
    task_id = page.locator("#task-list li").first.get_attribute("data-id")
    page.get_by_label("Message").fill(f"delete task {task_id}")
    page.get_by_role("button", name="Run in background").click()
    run = page.locator("#runs li").first
    expect(run).to_have_class("status-awaiting_approval", timeout=30_000)
    run.get_by_role("button", name="Approve").click()
    expect(run).to_have_class("status-succeeded", timeout=30_000)
    expect(page.locator("#task-list li")).to_have_count(0)
    page.close()


def test_a_wrong_password_is_shown_plainly(server: str, browser: object) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(server)

    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()

    problem = page.get_by_role("alert")
    playwright.expect(problem).to_contain_text("Incorrect username or password (request ")
    page.close()
