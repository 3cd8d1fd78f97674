"""How many agent turns a process runs at once: the rest wait their turn, briefly, in order.

A turn is mostly waiting for the model, but each piece of its answer costs the process CPU.
Past what the CPU can serve, every turn that starts slows every other: all of them get their
first words late together. So a process runs at most AGENT_CONCURRENCY turns; the next
AGENT_QUEUE_LENGTH wait, first come first served, each up to AGENT_QUEUE_SECONDS. A turn
that cannot wait (the queue is full, or its wait ran out) is refused at once with 503 and
Retry-After: a client tries again a moment later, instead of slowing everyone down.
"""

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from task_api.errors import AgentsBusy


class Admission:
    """A semaphore with a bounded, first-come-first-served queue and a bounded wait."""

    def __init__(self, at_once: int, queue_length: int, wait_seconds: float) -> None:
        self.free = at_once
        self.queue_length = queue_length
        self.wait_seconds = wait_seconds
        self.waiting: deque[asyncio.Future[None]] = deque()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Hold one of the places for the block; AgentsBusy if none comes in time."""
        await self.enter()
        try:
            yield
        finally:
            self.leave()

    async def enter(self) -> None:
        if self.free > 0 and not self.waiting:
            self.free -= 1
            return
        if len(self.waiting) >= self.queue_length:
            raise AgentsBusy(retry_after=1)
        place = asyncio.get_running_loop().create_future()
        self.waiting.append(place)
        try:
            async with asyncio.timeout(self.wait_seconds):
                await place  # `leave` hands its place over: `free` stays as it is
        except BaseException as gave_up:  # its wait ran out, or its client went away
            if place.done() and not place.cancelled():
                self.leave()  # handed a place just as it gave up: pass it on
            if isinstance(gave_up, TimeoutError):
                raise AgentsBusy(retry_after=1) from None
            raise
        finally:
            if place in self.waiting:
                self.waiting.remove(place)

    def leave(self) -> None:
        """Hand the place to the first turn still waiting, or free it."""
        while self.waiting:
            place = self.waiting.popleft()
            if not place.done():
                place.set_result(None)
                return
        self.free += 1
