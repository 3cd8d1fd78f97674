"""At most AGENT_CONCURRENCY agent turns at once per process; the next few wait their turn,
in order; the rest are told to come back (503, Retry-After)."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from agents import Model
from conftest import PausingModel
from fastapi import FastAPI
from fastapi.testclient import TestClient

from course_shared.offline_model import OfflineModel
from task_api.admission import Admission
from task_api.agents.provider import OFFLINE_ROUTES
from task_api.errors import AgentsBusy

UseModel = Callable[[Model], None]


def test_turns_past_the_limit_wait_in_the_order_they_came() -> None:
    async def scenario() -> list[str]:
        admission = Admission(at_once=1, queue_length=3, wait_seconds=60)
        order: list[str] = []

        async def turn(name: str) -> None:
            async with admission.turn():
                order.append(name)
                await asyncio.sleep(0)  # let the others queue up behind

        await admission.enter()  # one turn is running
        waiting = [asyncio.create_task(turn(name)) for name in ("b", "c", "d")]
        await asyncio.sleep(0)
        assert order == []  # all three wait
        admission.leave()
        await asyncio.gather(*waiting)
        return order

    assert asyncio.run(scenario()) == ["b", "c", "d"]


def test_a_full_queue_is_refused_at_once_and_a_long_wait_gives_up() -> None:
    async def scenario() -> None:
        admission = Admission(at_once=1, queue_length=1, wait_seconds=0.05)
        await admission.enter()
        waiter = asyncio.create_task(admission.enter())
        await asyncio.sleep(0)
        with pytest.raises(AgentsBusy):  # the one place in the queue is taken
            await admission.enter()
        with pytest.raises(AgentsBusy):  # and the one waiting gives up after its wait
            await waiter
        admission.leave()
        await admission.enter()  # the place is free again: nothing leaked

    asyncio.run(scenario())


def test_a_turn_that_gives_up_hands_its_place_on() -> None:
    async def scenario() -> None:
        admission = Admission(at_once=1, queue_length=2, wait_seconds=60)
        await admission.enter()
        first = asyncio.create_task(admission.enter())
        second = asyncio.create_task(admission.enter())
        await asyncio.sleep(0)
        first.cancel()  # its client went away while it waited
        admission.leave()
        await second  # gets the place
        assert admission.free == 0 and not admission.waiting

    asyncio.run(scenario())


@pytest.fixture
def one_at_a_time(fresh_app: FastAPI) -> Iterator[None]:
    own = fresh_app.state.admission
    fresh_app.state.admission = Admission(at_once=1, queue_length=0, wait_seconds=0)
    yield
    fresh_app.state.admission = own


def test_a_chat_past_the_limit_is_503_with_retry_after(
    client: TestClient, use_model: UseModel, one_at_a_time: None
) -> None:
    model = PausingModel(OfflineModel(routes=OFFLINE_ROUTES), pause_at=1)
    use_model(model)
    first: dict[str, Any] = {}
    running = threading.Thread(
        target=lambda: first.update(response=client.post("/agent/chat", json={"message": "hi"}))
    )
    running.start()
    assert model.waiting.wait(timeout=10)

    refused = client.post("/agent/chat/stream", json={"message": "hello"})

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "1"
    assert refused.json()["detail"] == "The agents are busy with other chats: try again in 1 s"
    model.resume()
    running.join(timeout=30)
    assert first["response"].status_code == 200
    assert client.post("/agent/chat", json={"message": "hello"}).status_code == 200  # free again


def test_a_bad_chat_never_takes_a_place(client: TestClient, one_at_a_time: None) -> None:
    assert client.post("/agent/chat", json={"message": ""}).status_code == 422
    assert client.post("/agent/chat", json={"message": "hello"}).status_code == 200
