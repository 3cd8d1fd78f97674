"""The worker: takes background runs from the queue and carries them out.

    python -m task_api.runs.worker        a worker process (RUNS_IN_PROCESS=false for the API)

The API process runs one too when RUNS_IN_PROCESS is true (the default, and the only way on
SQLite). Each worker runs up to WORKER_CONCURRENCY runs at once, renews their leases, takes
up runs whose workers died (queue.py says how), resumes runs whose approvals were decided,
takes turns whose approvals expired to their end, deletes finished runs after
RUN_RETENTION_DAYS, and on SIGTERM finishes its runs or hands them back.
"""

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from typing import Any

from agents import Agent
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session

from task_api.agents.pauses import (
    StaleApproval,
    approvals_of_pause,
    end_paused_turn,
    expire_pauses,
    paused_turn_of_run,
    was_rejected,
)
from task_api.agents.provider import open_model
from task_api.agents.team import build_agents
from task_api.agents.tools import TaskContext, report_progress, tool_error
from task_api.agents.turns import (
    ApprovalNeeded,
    Done,
    Failed,
    ToolCalled,
    ToolOutput,
    Turn,
    TurnEvent,
    data_of,
    resume_turn,
    run_turn,
    start_turn,
)
from task_api.config import Settings, read_settings
from task_api.database import create_db_engine
from task_api.errors import ConversationNotFound
from task_api.events import TaskEventBroker, open_notifier
from task_api.logs import configure_logging
from task_api.models import PausedTurn, utc_now
from task_api.runs.errors import CancelRequested, LeaseLost, StopRun
from task_api.runs.models import AgentRun, RunStatus
from task_api.runs.queue import QUEUE_CHANNEL, Claim, RunQueue
from task_api.runs.webhooks import DELIVERY_LEASE_SECONDS, deliver_final_status

logger = logging.getLogger(__name__)

# On SIGTERM, runs still going after this many seconds are handed back (see hand_back).
SHUTDOWN_GRACE_SECONDS = 20
PURGE_EVERY_SECONDS = 3600
WEBHOOK_CONCURRENCY = 8  # deliveries at once, per worker


# What the database does when it is away or too busy: the worker waits, it does not die.
DATABASE_AWAY = (OperationalError, InterfaceError, PoolTimeout)
FIRST_RETRY_SECONDS = 0.5  # doubled after each failed try, up to LAST_RETRY_SECONDS
LAST_RETRY_SECONDS = 30.0


class Outage:
    """The database is away: wait before trying again, longer each time; say so once."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.retry = FIRST_RETRY_SECONDS

    async def wait(self, error: Exception, stop: asyncio.Event) -> None:
        if self.since is None:
            self.since = time.monotonic()
            logger.warning(
                "database unavailable (%s): retrying until it answers", type(error).__name__
            )
        with suppress(TimeoutError):  # told to stop: at once
            await asyncio.wait_for(stop.wait(), self.retry)
        self.retry = min(self.retry * 2, LAST_RETRY_SECONDS)

    def over(self) -> None:
        if self.since is not None:
            logger.warning("database back after %.0f s", time.monotonic() - self.since)
        self.since, self.retry = None, FIRST_RETRY_SECONDS


class Worker:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        queue: RunQueue,
        broker: TaskEventBroker,
        agents: Agent[TaskContext],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.queue = queue
        self.broker = broker
        self.agents = agents
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.running: dict[asyncio.Task[None], Claim] = {}
        self.next_recovery = self.next_purge = 0.0  # loop times: when to do each again
        self.interrupted: dict[int, str] = {}  # run id -> why this worker stopped it
        # Webhook deliveries, apart from the runs: a slow receiver holds no run slot.
        self.deliveries: set[asyncio.Task[None]] = set()
        # Chat turns whose approvals expired, taken to their end with nobody listening.
        self.expired_turns: set[asyncio.Task[None]] = set()

    async def work(self, stop: asyncio.Event) -> None:
        """Claim and run until `stop` is set; then finish or hand back what is running."""
        logger.info(
            "worker %s takes runs, %d at once", self.name, self.settings.worker_concurrency
        )
        loop = asyncio.get_running_loop()
        self.next_recovery = self.next_purge = loop.time()
        outage = Outage()
        with self.queue.notifier.listening(QUEUE_CHANNEL) as queued:
            while not stop.is_set():
                try:
                    await self.take_runs()
                except DATABASE_AWAY as error:  # an outage of any length: wait, and try again
                    await outage.wait(error, stop)
                    continue
                outage.over()
                stopped = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    [stopped, asyncio.create_task(queued.wait())],
                    return_when=asyncio.FIRST_COMPLETED,
                )
                stopped.cancel()
        await self.shut_down()

    async def take_runs(self) -> None:
        """Take up runs whose workers died, purge old ones now and then, claim queued runs
        while there are free slots, and the webhooks that are due."""
        loop = asyncio.get_running_loop()
        if loop.time() >= self.next_recovery:
            await run_in_threadpool(self.queue.recover)
            # At most WORKER_CONCURRENCY expired chat turns at once, like runs: the rest wait
            # for a later sweep.
            room = self.settings.worker_concurrency - len(self.expired_turns)
            expired = await run_in_threadpool(
                expire_pauses, self.engine, self.queue.notifier, max(room, 0)
            )
            for pause in expired:
                turn = asyncio.create_task(self.finish_expired_turn(pause))
                self.expired_turns.add(turn)
                turn.add_done_callback(self.expired_turns.discard)
            self.next_recovery = loop.time() + self.settings.run_lease_seconds / 3
        if loop.time() >= self.next_purge:
            await run_in_threadpool(self.purge)
            self.next_purge = loop.time() + PURGE_EVERY_SECONDS
        while len(self.running) < self.settings.worker_concurrency:
            claim = await run_in_threadpool(self.queue.claim, self.name)
            if claim is None:
                break
            task = asyncio.create_task(self.execute(claim))
            self.running[task] = claim
            task.add_done_callback(self.running.pop)
        while len(self.deliveries) < WEBHOOK_CONCURRENCY:
            run = await run_in_threadpool(
                self.queue.claim_delivery, self.name, DELIVERY_LEASE_SECONDS
            )
            if run is None:
                return
            delivery = asyncio.create_task(self.deliver(run))
            self.deliveries.add(delivery)
            delivery.add_done_callback(self.deliveries.discard)

    async def shut_down(self) -> None:
        if self.running:
            logger.info("worker %s stops: %d runs still going", self.name, len(self.running))
            _done, going = await asyncio.wait(list(self.running), timeout=SHUTDOWN_GRACE_SECONDS)
            for task in going:
                task.cancel()  # handed back (see execute)
            await asyncio.gather(*going, return_exceptions=True)
        for tasks in (self.deliveries, self.expired_turns):  # a moment to finish
            if not tasks:
                continue
            _done, late = await asyncio.wait(list(tasks), timeout=SHUTDOWN_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    def purge(self) -> None:
        runs = self.queue.purge(utc_now() - timedelta(days=self.settings.run_retention_days))
        events = self.broker.purge()
        if runs or events:
            logger.info("purged %d finished runs and %d old task events", runs, events)

    async def execute(self, claim: Claim) -> None:
        """Carry out one run, from its claim to its final status."""
        heartbeat = asyncio.create_task(self.keep_lease(claim, asyncio.current_task()))
        try:
            await self.run(claim)
        except CancelRequested:  # noticed at a step of the run
            await self.finish(claim, RunStatus.CANCELLED, detail="Cancelled while it ran")
        except LeaseLost:
            logger.warning("run %s: lease lost, another worker has it", claim.run_id)
            return
        except asyncio.CancelledError:
            why = self.interrupted.pop(claim.run_id, "shutdown")
            if why == "shutdown":  # not finished within the grace period
                await run_in_threadpool(self.queue.hand_back, claim, "its worker shut down")
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # stopped on purpose
            if why == "lost":
                return
            await self.finish(claim, RunStatus.CANCELLED, detail="Cancelled while it ran")
        except DATABASE_AWAY as error:  # its lease runs out, and a worker takes it up again
            logger.warning(
                "run %s stopped: database unavailable (%s)", claim.run_id, type(error).__name__
            )
        except Exception:
            logger.exception("run %s failed", claim.run_id)
            await self.finish(claim, RunStatus.FAILED, detail="The run failed")
        finally:
            heartbeat.cancel()

    async def deliver(self, run: AgentRun) -> None:
        """Post a finished run's status to its webhook. If the database goes away meanwhile,
        the delivery's lease runs out and a worker takes it up again."""
        try:
            await deliver_final_status(self.queue, self.settings, run)
        except DATABASE_AWAY as error:
            logger.warning("webhook of run %s put off: %s", run.id, type(error).__name__)

    async def finish_expired_turn(self, pause: PausedTurn) -> None:
        """A chat turn whose approvals were not decided in time goes on with them rejected, to
        its end (its conversation keeps it), though nobody listens."""
        try:
            approvals = await run_in_threadpool(approvals_of_pause, self.engine, pause)
            turn = await resume_turn(
                self.agents, self.engine, self.broker, pause, approvals, "expired"
            )
            async for _event in run_turn(self.agents, turn, self.settings):
                pass  # the turn saves itself, as a chat's does
        except StaleApproval:
            await run_in_threadpool(end_paused_turn, self.engine, pause)
        except Exception:
            logger.exception("the expired turn of paused turn %s failed", pause.id)

    async def finish(self, claim: Claim, status: RunStatus, **outcome: Any) -> None:
        await run_in_threadpool(lambda: self.queue.finish(claim, status, **outcome))

    async def start(self, claim: Claim) -> Turn | None:
        """The run's turn: from its paused state if it waited for an approval, else from its
        message. None if it cannot go on (it is failed)."""
        try:
            paused = await run_in_threadpool(paused_turn_of_run, self.engine, claim.run_id)
            if paused is not None:
                pause, approvals = paused
                return await resume_turn(
                    self.agents, self.engine, self.broker, pause, approvals, "", run=claim
                )
            return await run_in_threadpool(
                start_turn,
                self.engine,
                self.broker,
                claim.owner_id,
                claim.message,
                claim.conversation_id,
                run=claim,
            )
        except StaleApproval:
            detail = "It waited for an approval asked by another version of the agents"
            await self.finish(claim, RunStatus.FAILED, detail=detail)
        except ConversationNotFound as gone:  # deleted since the run was queued
            await self.record(claim, Failed.of(gone))
            await self.finish(claim, RunStatus.FAILED, detail=gone.detail)
        return None

    async def run(self, claim: Claim) -> None:
        turn = await self.start(claim)
        if turn is None:
            return
        calls, failures = 0, []  # what the tools did, and which failed
        async for event in run_turn(self.agents, turn, self.settings):
            if isinstance(event, ToolCalled | ToolOutput) and event.name == report_progress.name:
                continue  # shown as `progress` events instead
            if isinstance(event, Done):  # kept with the final status, in one step
                await self.finish_turn(claim, turn, event, calls, failures)
                continue
            if isinstance(event, ApprovalNeeded):  # kept with the run's wait, in one step
                await self.wait_for_approval(claim, event)
                continue
            await self.record(claim, event)
            if isinstance(event, ToolOutput) and not was_rejected(event.output):
                calls += 1
                if (error := tool_error(event.output)) is not None:
                    failures.append(f"{event.name}: {error}")
            elif isinstance(event, Failed):
                await self.finish(claim, RunStatus.FAILED, detail=event.detail)

    async def wait_for_approval(self, claim: Claim, paused: ApprovalNeeded) -> None:
        """Stop the run until its owner decides: its paused turn, its `approval` event and its
        `awaiting_approval` status, in one transaction."""
        tools = ", ".join(sorted({approval["tool"] for approval in paused.approvals}))

        def save(session: Session) -> None:
            paused.save(session)
            session.add(claim.event(paused.type, data_of(paused)))

        detail = f"Waiting for approval: {tools}"
        await run_in_threadpool(self.queue.wait_for_approval, claim, detail, save)

    async def finish_turn(
        self, claim: Claim, turn: Turn, done: Done, calls: int, failures: list[str]
    ) -> None:
        """End the run with its turn: the turn saved in its conversation, the `done` event and
        the final status, in one transaction. A worker that stops before it leaves none of
        them (the run may be done again); after it, the run is finished."""
        result = {**data_of(done), "tool_calls": calls, "failed_tool_calls": failures}
        status, detail = RunStatus.SUCCEEDED, None
        if calls and len(failures) == calls:  # the reply may sound fine: the run is not
            status = RunStatus.FAILED
            detail = f"Every tool call failed: {'; '.join(failures)}"[:500]

        def save(session: Session) -> None:
            turn.save(session, done.items)
            session.add(claim.event(done.type, data_of(done)))

        try:
            await self.finish(claim, status, result=result, detail=detail, turn=save)
        except ConversationNotFound as gone:  # deleted while the run went on
            await self.record(claim, Failed.of(gone))
            await self.finish(claim, RunStatus.FAILED, detail=gone.detail)

    async def record(self, claim: Claim, event: TurnEvent) -> None:
        await run_in_threadpool(self.queue.append, claim, event.type, data_of(event))

    async def keep_lease(self, claim: Claim, task: asyncio.Task[Any] | None) -> None:
        """Renew the run's lease while it goes on; stop it if it is cancelled or lost."""
        assert task is not None
        while True:
            await asyncio.sleep(self.settings.run_lease_seconds / 3)
            try:
                await run_in_threadpool(self.queue.renew, claim)
            except StopRun as stop:  # cancelled while waiting on the model, say
                self.interrupted[claim.run_id] = (
                    "cancel" if isinstance(stop, CancelRequested) else "lost"
                )
                task.cancel()
                return
            except Exception as error:  # the database is away: the lease may run out
                logger.warning(
                    "run %s: lease not renewed (%s)", claim.run_id, type(error).__name__
                )


@asynccontextmanager
async def running_worker(
    settings: Settings,
    engine: Engine,
    queue: RunQueue,
    broker: TaskEventBroker,
    agents: Agent[TaskContext],
) -> AsyncIterator[Worker]:
    """A worker in the background of this process, stopped (gracefully) when the block ends."""
    worker = Worker(settings, engine, queue, broker, agents)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.work(stop))
    try:
        yield worker
    finally:
        stop.set()
        await task


async def main() -> None:
    settings = read_settings()
    configure_logging(settings)
    engine = create_db_engine(settings.database_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)
    async with open_notifier(settings, engine) as notifier, open_model(settings) as model:
        queue = RunQueue(engine, notifier, settings.run_lease_seconds)
        broker = TaskEventBroker(engine, notifier)
        worker = Worker(
            settings, engine, queue, broker, build_agents(model, settings.approval_required_tools)
        )
        await worker.work(stop)
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
