"""Live events that reach a client whichever process it is connected to.

Each event is a row in the database: a change to a user's tasks (`task_event`) or a step of a
background run (`agent_run_event`). Its id counts up and is never reused, so it is the SSE
event id a client sends back as Last-Event-ID. Writing an event wakes the streams that wait
for it, in every process, through the notifier:

- with REDIS_URL, Redis pub/sub;
- on PostgreSQL, NOTIFY and LISTEN;
- on SQLite (one process), within the process.

A waiting stream also looks again every POLL_SECONDS, whatever it was told: if a message
is lost (a Redis restart), its events still arrive, a moment later.
"""

import asyncio
import logging
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

import psycopg
import redis
import redis.asyncio
from sqlalchemy import Engine, delete, func, text
from sqlmodel import Session, col, select

from task_api.config import Settings
from task_api.models import TaskEvent, utc_now

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
REDIS_TIMEOUT_SECONDS = 0.5  # to connect, and for each answer to a PUBLISH
REDIS_RETRY_SECONDS = 5.0  # after a failure, before Redis is tried again
CHANNEL = "task_api_events"


class TaskEventType(StrEnum):
    """The names of the events on a user's task stream (GET /tasks/events)."""

    CREATED = "task.created"
    UPDATED = "task.updated"
    DELETED = "task.deleted"
    RESYNC = "task.resync"  # the client missed more than is kept: reload the list


class AgentEventType(StrEnum):
    """The names of the events of an agent turn: on the chat stream, the WebSocket, and (with
    PROGRESS and STATUS) a background run's stream."""

    AGENT = "agent"
    TOOL_CALL = "tool_call"
    TOOL_OUTPUT = "tool_output"
    DELTA = "delta"
    DONE = "done"
    ERROR = "error"
    APPROVAL = "approval"  # the turn waits for its owner's decision on a tool call
    PROGRESS = "progress"  # background runs only
    STATUS = "status"  # background runs only


def parse_event_id(value: str | None) -> int | None:
    """The id of an event we sent (a count, a few digits long); None for anything else."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 18:
        return None
    return int(value)


@dataclass(eq=False)  # each one its own: kept in a set
class Signal:
    """Set when something may have been written on the channel a stream listens to."""

    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self) -> None:
        """Until told, or for POLL_SECONDS at most; then the stream looks again."""
        with suppress(TimeoutError):
            await asyncio.wait_for(self.event.wait(), POLL_SECONDS)
        self.event.clear()


class Notifier:
    """Wakes the streams of this process that listen to a channel ("tasks:7", "run:12").

    On its own it serves one process. Subclasses carry each notice to every process.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # notices come from worker threads too
        self.listeners: dict[str, set[Signal]] = defaultdict(set)

    @contextmanager
    def listening(self, channel: str) -> Iterator[Signal]:
        signal = Signal()
        with self.lock:
            self.listeners[channel].add(signal)
        try:
            yield signal
        finally:
            with self.lock:
                self.listeners[channel].discard(signal)

    def wake(self, channel: str) -> None:
        with self.lock:
            signals = list(self.listeners.get(channel, ()))
        for signal in signals:
            # asyncio events are not thread-safe: set it on the stream's own loop.
            signal.loop.call_soon_threadsafe(signal.event.set)

    def notify(self, channel: str) -> None:
        """Something was written on `channel`: wake its listeners, here and elsewhere."""
        self.wake(channel)

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class PostgresNotifier(Notifier):
    """NOTIFY on one connection, LISTEN on another, in every process."""

    def __init__(self, engine: Engine, conninfo: str) -> None:
        super().__init__()
        self.engine = engine
        self.conninfo = conninfo
        self.listener: asyncio.Task[None] | None = None

    def notify(self, channel: str) -> None:
        try:
            with self.engine.connect() as connection:
                connection.execute(
                    text("SELECT pg_notify(:name, :channel)"),
                    {"name": CHANNEL, "channel": channel},
                )
                connection.commit()
        except Exception as error:  # the streams poll anyway
            logger.warning("could not notify %s: %s", channel, type(error).__name__)
            self.wake(channel)

    async def start(self) -> None:
        self.listener = asyncio.create_task(self.listen())

    async def listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {CHANNEL}")
                    async for notice in connection.notifies():
                        self.wake(notice.payload)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("LISTEN failed (%s): streams poll meanwhile", type(error).__name__)
                await asyncio.sleep(POLL_SECONDS)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.cancel()


class RedisNotifier(Notifier):
    """Redis pub/sub: every process subscribes; a notice is one PUBLISH."""

    def __init__(self, url: str, prefix: str) -> None:
        super().__init__()
        self.url = url
        self.channel = f"{prefix}:{CHANNEL}"
        self.publisher = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
        )
        self.listener: asyncio.Task[None] | None = None
        self.away_until = 0.0  # time.monotonic(): Redis failed, leave it alone till then

    def notify(self, channel: str) -> None:
        """PUBLISH; if Redis fails or stalls, wake this process only, and for
        REDIS_RETRY_SECONDS do not try (the streams of other processes poll meanwhile)."""
        if time.monotonic() < self.away_until:
            self.wake(channel)
            return
        try:
            self.publisher.publish(self.channel, channel)
        except redis.RedisError as error:
            self.away_until = time.monotonic() + REDIS_RETRY_SECONDS
            logger.warning("could not notify %s: %s", channel, type(error).__name__)
            self.wake(channel)

    async def start(self) -> None:
        self.listener = asyncio.create_task(self.listen())

    async def listen(self) -> None:
        while True:
            try:
                client = redis.asyncio.Redis.from_url(
                    self.url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
                )
                async with client, client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self.wake(message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning(
                    "Redis pub/sub failed (%s): streams poll meanwhile", type(error).__name__
                )
                await asyncio.sleep(POLL_SECONDS)

    async def stop(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
        self.publisher.close()


def build_notifier(settings: Settings, engine: Engine) -> Notifier:
    if settings.redis_url is not None:
        return RedisNotifier(settings.redis_url.get_secret_value(), settings.redis_prefix)
    if engine.dialect.name == "postgresql":
        url = engine.url.set(drivername="postgresql")
        return PostgresNotifier(engine, url.render_as_string(hide_password=False))
    return Notifier()


@asynccontextmanager
async def open_notifier(settings: Settings, engine: Engine) -> AsyncIterator[Notifier]:
    notifier = build_notifier(settings, engine)
    await notifier.start()
    try:
        yield notifier
    finally:
        await notifier.stop()


# A client that comes back after longer than this must reload its list (task.resync).
TASK_EVENT_RETENTION = timedelta(days=1)


class TaskEventBroker:
    """Each user's task changes: rows the repository writes with each change, read here,
    announced through the notifier."""

    def __init__(self, engine: Engine, notifier: Notifier) -> None:
        self.engine = engine
        self.notifier = notifier

    def wake(self, owner_id: int) -> None:
        """Wake the owner's streams, in every process: a change and its event were saved."""
        self.notifier.notify(f"tasks:{owner_id}")

    def events_after(self, owner_id: int, last_id: int) -> list[TaskEvent]:
        with Session(self.engine) as session:
            query = (
                select(TaskEvent)
                .where(TaskEvent.owner_id == owner_id, col(TaskEvent.id) > last_id)
                .order_by(col(TaskEvent.id))
                .limit(100)
            )
            return list(session.exec(query).all())

    def id_range(self) -> tuple[int, int]:
        """The oldest and newest event ids still kept (of anyone's): (0, 0) when none."""
        with Session(self.engine) as session:
            oldest, newest = session.exec(
                select(func.min(TaskEvent.id), func.max(TaskEvent.id))
            ).one()
        return oldest or 0, newest or 0

    def purge(self) -> int:
        """Forget events older than TASK_EVENT_RETENTION; how many."""
        with Session(self.engine) as session:
            old = delete(TaskEvent).where(
                col(TaskEvent.created_at) < utc_now() - TASK_EVENT_RETENTION
            )
            removed = session.exec(old).rowcount  # type: ignore[call-overload]
            session.commit()
        return int(removed or 0)
