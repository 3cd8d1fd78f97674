"""Task changes, fanned out to each user's open event streams."""

import asyncio
import threading
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

EventType = Literal["task.created", "task.updated", "task.deleted"]


@dataclass(frozen=True)
class TaskEvent:
    id: int  # counts up per user, so that a client can say which event it saw last
    type: EventType
    data: dict[str, Any]


def parse_event_id(value: str | None) -> int | None:
    """The id of an event we sent (a count, a few digits long); None for anything else."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


@dataclass
class Subscription:
    """One open stream: the events it missed while away, then a queue of live ones."""

    missed: list[TaskEvent]
    # True when the client missed more than the buffer holds: it should reload the list.
    out_of_sync: bool
    queue: asyncio.Queue[TaskEvent] = field(default_factory=asyncio.Queue)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)


class TaskEventBroker:
    """Keeps each user's last few task events and hands new ones to their open streams.

    It lives in this process's memory: a client connected to another worker process does
    not see these events. The capstone passes them through the database instead.
    """

    def __init__(self, buffer_size: int = 100) -> None:
        self.buffer_size = buffer_size
        # Routes that publish run in worker threads, streams on the event loop: one lock.
        self.lock = threading.Lock()
        self.last_ids: dict[int, int] = defaultdict(int)
        self.recent: dict[int, deque[TaskEvent]] = defaultdict(
            lambda: deque(maxlen=self.buffer_size)
        )
        self.subscriptions: dict[int, list[Subscription]] = defaultdict(list)

    def publish(self, owner_id: int, type: EventType, data: dict[str, Any]) -> TaskEvent:
        with self.lock:
            self.last_ids[owner_id] += 1
            event = TaskEvent(self.last_ids[owner_id], type, data)
            self.recent[owner_id].append(event)
            # Still under the lock, so that every stream gets the events in order of their ids.
            for subscription in self.subscriptions[owner_id]:
                # asyncio queues are not thread-safe: hand the event to the stream's own loop.
                subscription.loop.call_soon_threadsafe(subscription.queue.put_nowait, event)
        return event

    @contextmanager
    def subscribe(self, owner_id: int, last_event_id: int | None) -> Iterator[Subscription]:
        """Follow a user's events; with `last_event_id`, first get the ones after it."""
        with self.lock:  # replay and follow under one lock, so no event falls in between
            recent = list(self.recent[owner_id])
            missed = [e for e in recent if last_event_id is not None and e.id > last_event_id]
            oldest = recent[0].id if recent else self.last_ids[owner_id] + 1
            out_of_sync = last_event_id is not None and (
                last_event_id < oldest - 1 or last_event_id > self.last_ids[owner_id]
            )
            subscription = Subscription(missed=missed, out_of_sync=out_of_sync)
            self.subscriptions[owner_id].append(subscription)
        try:
            yield subscription
        finally:
            with self.lock:
                self.subscriptions[owner_id].remove(subscription)

    def subscriber_count(self, owner_id: int) -> int:
        with self.lock:
            return len(self.subscriptions[owner_id])


broker = TaskEventBroker()


def get_event_broker() -> TaskEventBroker:
    """The broker of this process; tests swap it for a fresh one."""
    return broker
