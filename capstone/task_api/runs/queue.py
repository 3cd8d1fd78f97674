"""The `agent_run` table is the queue of background runs.

A worker claims the next queued run (high priority first, then the oldest) and holds a lease
on it, which it renews while the run goes on. Every claim raises the run's `attempt`, and
every write a worker makes for a run names the attempt it claimed: once the lease ran out
and the run was taken up again, the old worker's writes change nothing (`LeaseLost`).

A run whose lease ran out (its worker crashed or was killed) is queued again if it had not
called a tool yet, and otherwise failed: its tool calls may already have changed tasks, and
doing them again could make them twice. `made_tool_call` is set in the same transaction as
a tool's change, so the rule holds whenever the worker stopped. A run's end is one
transaction too: its turn saved in its conversation, its `done` event and its final status
(`finish`). Before it, the run has saved no turn, and may be done again; after it, it is
finished. The events of an interrupted attempt stay in the run's stream, each with its
attempt, followed by a `status` event that says what became of the run.

Rows are locked FOR NO KEY UPDATE, and claims skip locked ones: a worker never waits for a
run another holds, and a row that only refers to a run (a cancel request) never waits for it.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from task_api.events import AgentEventType, Notifier
from task_api.models import MAX_ID, Approval, PausedTurn, utc_now
from task_api.runs.errors import CancelRequested, LeaseLost
from task_api.runs.models import (
    ANNOUNCED_STATUSES,
    FINAL_STATUSES,
    WEBHOOK_DUE,
    AgentRun,
    AgentRunEvent,
    CancelRequest,
    RunCreate,
    RunPriority,
    RunStatus,
    WebhookAttempt,
)

logger = logging.getLogger(__name__)

QUEUE_CHANNEL = "runs:queue"
MAX_ATTEMPTS = 3  # a run interrupted this many times is failed, not queued again


def run_channel(run_id: int) -> str:
    return f"run:{run_id}"


@dataclass(frozen=True)
class Claim:
    """A run a worker holds: the attempt its writes name. Its tools reach the queue through it
    (the fence, progress reports)."""

    queue: "RunQueue" = field(repr=False)
    run_id: int
    attempt: int
    owner_id: int
    message: str
    conversation_id: str | None

    def fence(self, session: Session, changes_tasks: bool) -> None:
        self.queue.fence(session, self, changes_tasks)

    def report_progress(self, percent: int, message: str) -> None:
        self.queue.append(self, AgentEventType.PROGRESS, {"percent": percent, "message": message})

    def event(self, type: AgentEventType, data: dict[str, Any]) -> AgentRunEvent:
        """An event of this attempt of the run, to add to a session."""
        return AgentRunEvent(run_id=self.run_id, attempt=self.attempt, type=type, data=data)


class RunQueue:
    """Every method is one transaction, on a database session of its own."""

    def __init__(self, engine: Engine, notifier: Notifier, lease_seconds: float) -> None:
        self.engine = engine
        self.notifier = notifier
        self.lease = timedelta(seconds=lease_seconds)

    def enqueue(
        self, owner_id: int, data: RunCreate, idempotency_key: str | None = None
    ) -> AgentRun:
        """Queue a run; with an idempotency key the owner used before, the run it made then."""
        run = AgentRun(
            owner_id=owner_id,
            message=data.message,
            conversation_id=data.session_id,
            priority=data.priority,
            webhook_url=data.webhook_url,
            idempotency_key=idempotency_key,
        )
        with Session(self.engine, expire_on_commit=False) as session:
            session.add(run)
            try:
                session.commit()
            except IntegrityError:  # the key was used: by a retry, maybe at this very moment
                session.rollback()
                made = self.made_with(owner_id, idempotency_key)
                if made is None:
                    raise
                return made
        self.notifier.notify(QUEUE_CHANNEL)
        return run

    def made_with(self, owner_id: int, idempotency_key: str | None) -> AgentRun | None:
        """The owner's run that this idempotency key made, if any."""
        if idempotency_key is None:
            return None
        query = select(AgentRun).where(
            AgentRun.owner_id == owner_id, AgentRun.idempotency_key == idempotency_key
        )
        with Session(self.engine) as session:
            return session.exec(query).first()

    def count_queued(self, owner_id: int) -> int:
        query = select(func.count()).where(
            AgentRun.owner_id == owner_id, AgentRun.status == RunStatus.QUEUED
        )
        with Session(self.engine) as session:
            return session.exec(query).one()

    def get(self, owner_id: int, run_id: int) -> AgentRun | None:
        """The owner's run; None for someone else's, as for one that does not exist."""
        run = self.read(run_id) if 1 <= run_id <= MAX_ID else None
        return run if run is not None and run.owner_id == owner_id else None

    def read(self, run_id: int) -> AgentRun | None:
        """Any run, whoever owns it: for the worker."""
        with Session(self.engine) as session:
            return session.get(AgentRun, run_id)

    def list_runs(
        self, owner_id: int, status: RunStatus | None, limit: int, offset: int
    ) -> list[AgentRun]:
        query = select(AgentRun).where(AgentRun.owner_id == owner_id)
        if status is not None:
            query = query.where(AgentRun.status == status)
        query = query.order_by(col(AgentRun.id).desc()).offset(offset).limit(limit)
        with Session(self.engine) as session:
            return list(session.exec(query).all())

    def webhook_attempts(self, run_id: int) -> list[WebhookAttempt]:
        query = select(WebhookAttempt).where(WebhookAttempt.run_id == run_id)
        with Session(self.engine) as session:
            return list(session.exec(query.order_by(col(WebhookAttempt.id))).all())

    def webhook_attempts_of(self, message_id: str) -> int:
        """How many times this webhook message was tried, by any worker."""
        query = select(func.count()).where(WebhookAttempt.message_id == message_id)
        with Session(self.engine) as session:
            return session.exec(query).one()

    def record_webhook_attempt(
        self, run_id: int, message_id: str, status_code: int | None, error: str | None
    ) -> None:
        attempt = WebhookAttempt(
            run_id=run_id, message_id=message_id, status_code=status_code, error=error
        )
        with Session(self.engine) as session:
            session.add(attempt)
            session.commit()

    def events_after(self, run_id: int, last_id: int) -> list[AgentRunEvent]:
        query = (
            select(AgentRunEvent)
            .where(AgentRunEvent.run_id == run_id, col(AgentRunEvent.id) > last_id)
            .order_by(col(AgentRunEvent.id))
            .limit(500)
        )
        with Session(self.engine) as session:
            return list(session.exec(query).all())

    def claim(self, worker: str) -> Claim | None:
        """Take the next queued run, or None.

        Fair between users: each user's next run (high priority first, then the oldest) is
        a candidate. The candidate of the user with the fewest runs running goes first; among
        equals, the user served longest ago (whose last run started first, or who has had
        none); then the oldest. So a user who queued a hundred runs, high ones included,
        cannot keep another user's one run waiting, however few the workers.

        On PostgreSQL, `FOR UPDATE SKIP LOCKED` lets workers claim at the same time without
        waiting on each other or taking one run twice.
        """
        high_first = case((col(AgentRun.priority) == RunPriority.HIGH, 0), else_=1)
        place = func.row_number().over(
            partition_by=AgentRun.owner_id, order_by=(high_first, col(AgentRun.id))
        )
        queued = (
            select(AgentRun.id, place.label("place"))
            .where(AgentRun.status == RunStatus.QUEUED)
            .subquery()
        )
        heads = select(queued.c.id).where(queued.c.place == 1)  # each user's next run
        theirs = aliased(AgentRun)
        same_user = theirs.owner_id == AgentRun.owner_id
        busy = (
            select(func.count())
            .where(same_user, theirs.status == RunStatus.RUNNING)
            .scalar_subquery()
        )
        served = select(func.max(theirs.started_at)).where(same_user).scalar_subquery()
        next_run = (
            select(AgentRun.id)
            .where(col(AgentRun.id).in_(heads), AgentRun.status == RunStatus.QUEUED)
            .order_by(busy, served.asc().nulls_first(), col(AgentRun.id))
            .limit(1)
            # SQLite has no such clause, and one writer at a time.
            .with_for_update(skip_locked=True, key_share=True)
            .scalar_subquery()
        )
        now = utc_now()
        claim = (
            update(AgentRun)
            .where(col(AgentRun.id) == next_run, AgentRun.status == RunStatus.QUEUED)
            .values(
                status=RunStatus.RUNNING,
                attempt=AgentRun.attempt + 1,
                lease_owner=worker,
                lease_expires_at=now + self.lease,
                started_at=now,
            )
            .returning(
                AgentRun.id,
                AgentRun.attempt,
                AgentRun.owner_id,
                AgentRun.message,
                AgentRun.conversation_id,
            )
        )
        with Session(self.engine) as session:
            row = session.execute(claim).first()
            session.commit()
        if row is None:
            return None
        return Claim(self, *row)

    def held(self, claim: Claim) -> Any:
        """The condition that the run is still this claim's, and running."""
        return (
            (col(AgentRun.id) == claim.run_id)
            & (col(AgentRun.attempt) == claim.attempt)
            & (col(AgentRun.status) == RunStatus.RUNNING)
        )

    def renew(self, claim: Claim) -> None:
        """Extend the lease (the heartbeat); LeaseLost or CancelRequested tell it to stop."""
        with Session(self.engine) as session:
            self.fence(session, claim, changes_tasks=False)
            session.commit()

    def fence(self, session: Session, claim: Claim, changes_tasks: bool) -> None:
        """In the caller's transaction, before it writes: the run is still this claim's, and
        its lease is extended.

        With `changes_tasks`, also note that the run made a tool call: committed together
        with the change, or not at all. The row stays locked until the caller commits, so a
        recovery cannot take the run up in between.
        """
        values: dict[str, Any] = {"made_tool_call": True} if changes_tasks else {}
        values["lease_expires_at"] = utc_now() + self.lease
        fenced = session.execute(
            update(AgentRun)
            .where(self.held(claim))
            .values(**values)
            .returning(cancel_was_requested(claim.run_id))
        ).first()
        if fenced is None:
            raise LeaseLost(claim.run_id)
        if fenced[0]:
            raise CancelRequested(claim.run_id)

    def append(self, claim: Claim, type: AgentEventType, data: dict[str, Any]) -> None:
        """Add an event to the run, if the run is still this claim's; wake its streams.

        A cancelled run's event is written all the same, then CancelRequested stops it: what
        it says happened (a progress report after a task was made) did happen.
        """
        cancelled: CancelRequested | None = None
        with Session(self.engine) as session:
            try:
                self.fence(session, claim, changes_tasks=False)
            except CancelRequested as stop:  # the fence holds: the run is still ours
                cancelled = stop
            session.add(claim.event(type, data))
            if type == AgentEventType.PROGRESS:
                session.execute(
                    update(AgentRun)
                    .where(col(AgentRun.id) == claim.run_id)
                    .values(progress_percent=data["percent"], progress_message=data["message"])
                )
            session.commit()
        self.notifier.notify(run_channel(claim.run_id))
        if cancelled is not None:
            raise cancelled

    def finish(
        self,
        claim: Claim,
        status: RunStatus,
        *,
        result: dict[str, Any] | None = None,
        detail: str | None = None,
        turn: Callable[[Session], None] | None = None,
    ) -> bool:
        """End the run with a final status and its last event; False if no longer ours.

        `turn` writes the run's finished turn (its conversation and its `done` event) in the
        same transaction: a worker that stops before the commit leaves none of it, and the run
        can be done again; after the commit, it is finished.
        """
        with Session(self.engine) as session:
            ended = session.execute(
                update(AgentRun)
                .where(self.held(claim))
                .values(
                    status=status,
                    result=result,
                    detail=detail,
                    finished_at=utc_now(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            ).rowcount  # type: ignore[attr-defined]
            if ended:
                if turn is not None:
                    turn(session)
                session.add(status_event(claim.run_id, claim.attempt, status, detail))
            session.commit()
        self.notifier.notify(run_channel(claim.run_id))
        self.notifier.notify(QUEUE_CHANNEL)  # a slot is free, and its webhook may be due
        return bool(ended)

    def wait_for_approval(
        self, claim: Claim, detail: str, pause: Callable[[Session], None]
    ) -> bool:
        """Stop the run until its owner decides: `awaiting_approval`, no worker holds it, and
        its webhook is due with that status. `pause` stores the paused turn and its `approval`
        event in the same transaction. False if the run is no longer this claim's."""
        with Session(self.engine) as session:
            paused = session.execute(
                update(AgentRun)
                .where(self.held(claim))
                .values(
                    status=RunStatus.AWAITING_APPROVAL,
                    detail=detail,
                    webhook_done_at=None,
                    lease_owner=None,
                    lease_expires_at=None,
                )
            ).rowcount  # type: ignore[attr-defined]
            if paused:
                pause(session)
                session.add(
                    status_event(claim.run_id, claim.attempt, RunStatus.AWAITING_APPROVAL, detail)
                )
            session.commit()
        self.notifier.notify(run_channel(claim.run_id))
        self.notifier.notify(QUEUE_CHANNEL)  # a slot is free, and its webhook is due
        return bool(paused)

    def hand_back(self, claim: Claim, detail: str) -> None:
        """The worker stops (shutdown): queue the run again, or fail it if it made a tool call."""
        with Session(self.engine) as session:
            run = session.exec(
                select(AgentRun).where(self.held(claim)).with_for_update(key_share=True)
            ).first()
            if run is not None:
                self._interrupt(session, run, detail)
            session.commit()
        self.notifier.notify(run_channel(claim.run_id))
        self.notifier.notify(QUEUE_CHANNEL)

    def recover(self) -> list[int]:
        """Take up the runs whose lease ran out: their workers stopped without a word."""
        with Session(self.engine) as session:
            expired = session.exec(
                select(AgentRun)
                .where(
                    AgentRun.status == RunStatus.RUNNING,
                    col(AgentRun.lease_expires_at) < utc_now(),
                )
                .with_for_update(skip_locked=True, key_share=True)
            ).all()
            taken_up = [run.id for run in expired if run.id is not None]
            for run in expired:
                self._interrupt(session, run, "its worker stopped")
            session.commit()
        for run_id in taken_up:
            self.notifier.notify(run_channel(run_id))
        if taken_up:
            self.notifier.notify(QUEUE_CHANNEL)
        return taken_up

    def _interrupt(self, session: Session, run: AgentRun, why: str) -> None:
        assert run.id is not None
        run.lease_owner, run.lease_expires_at = None, None
        if run.made_tool_call:
            run.status, run.finished_at = RunStatus.FAILED, utc_now()
            run.detail = (
                f"Interrupted ({why}) after it had called a tool: not retried, "
                "because its tool calls may already have changed tasks"
            )
        elif run.attempt >= MAX_ATTEMPTS:  # whatever stops it will stop it again
            run.status, run.finished_at = RunStatus.FAILED, utc_now()
            run.detail = f"Interrupted ({why}) {run.attempt} times: not retried again"
        else:
            run.status, run.detail = RunStatus.QUEUED, f"Queued again: {why} before any tool call"
        session.add(run)
        session.add(status_event(run.id, run.attempt, run.status, run.detail))
        logger.warning("run %s %s: %s", run.id, run.status, why)

    def request_cancel(self, run_id: int) -> None:
        """A queued run, or one awaiting approval, is cancelled at once; a running one at its
        next step.

        Never waits for a worker: a run a worker holds locked (it is being claimed, or
        written to) is asked to stop, in a row of its own.
        """
        now = utc_now()
        free = (
            select(AgentRun.id)
            .where(AgentRun.id == run_id)
            .with_for_update(skip_locked=True, key_share=True)
        )
        with Session(self.engine) as session:
            cancelled = session.execute(
                update(AgentRun)
                .where(col(AgentRun.id).in_(free.scalar_subquery()))
                .where(col(AgentRun.status).in_(NOT_STARTED))
                .values(status=RunStatus.CANCELLED, finished_at=now, detail=CANCELLED_QUEUED)
                .returning(AgentRun.attempt)
            ).first()
            if cancelled is not None:
                cancel = status_event(
                    run_id, cancelled.attempt, RunStatus.CANCELLED, CANCELLED_QUEUED
                )
                session.add(cancel)
            elif session.get(CancelRequest, run_id) is None:
                session.add(CancelRequest(run_id=run_id))
            try:
                session.commit()
            except IntegrityError:  # asked twice at the same moment: once is enough
                session.rollback()
        self.notifier.notify(run_channel(run_id))
        if cancelled is not None:
            self.notifier.notify(QUEUE_CHANNEL)  # its webhook may be due

    def cancel_requested(self, run_id: int) -> bool:
        with Session(self.engine) as session:
            return session.get(CancelRequest, run_id) is not None

    def claim_delivery(self, worker: str, lease_seconds: float) -> AgentRun | None:
        """Take the next webhook to deliver, or None: the final status of a run that ended,
        whoever ended it (its worker, a recovery, a shutdown, a cancel), or its wait for an
        approval, until it is delivered or given up on (`delivered`). Held for
        `lease_seconds`: if this worker stops first, another delivers it."""
        now = utc_now()
        lease_free = col(AgentRun.lease_expires_at).is_(None) | (
            col(AgentRun.lease_expires_at) < now
        )
        next_due = (
            select(AgentRun.id)
            .where(WEBHOOK_DUE, col(AgentRun.status).in_(ANNOUNCED_STATUSES), lease_free)
            .order_by(col(AgentRun.finished_at))
            .limit(1)
            .with_for_update(skip_locked=True, key_share=True)
            .scalar_subquery()
        )
        take = (
            update(AgentRun)
            .where(col(AgentRun.id) == next_due)
            .values(lease_owner=worker, lease_expires_at=now + timedelta(seconds=lease_seconds))
            .returning(AgentRun)
        )
        with Session(self.engine, expire_on_commit=False) as session:
            run = session.scalars(take).first()
            session.commit()
        return run

    def delivered(self, run_id: int, status: RunStatus) -> None:
        """The run's webhook is done with, for this status: delivered, or given up on. If the
        run has moved on meanwhile (approved, and taken by a worker), its next status is due."""
        with Session(self.engine) as session:
            session.execute(
                update(AgentRun)
                .where(col(AgentRun.id) == run_id, AgentRun.status == status)
                .values(webhook_done_at=utc_now(), lease_owner=None, lease_expires_at=None)
            )
            session.commit()

    def purge(self, older_than: datetime) -> int:
        """Forget finished runs (their events, their paused turns) that ended before
        `older_than`, and chats' paused turns made before it."""
        with Session(self.engine) as session:
            old = col(AgentRun.finished_at) < older_than
            finished = col(AgentRun.status).in_(FINAL_STATUSES)
            gone = select(AgentRun.id).where(finished, old)
            paused = select(PausedTurn.id).where(
                col(PausedTurn.run_id).in_(gone)
                | (col(PausedTurn.run_id).is_(None) & (col(PausedTurn.created_at) < older_than))
            )
            session.execute(delete(Approval).where(col(Approval.paused_turn_id).in_(paused)))
            session.execute(delete(PausedTurn).where(col(PausedTurn.id).in_(paused)))
            for table in (AgentRunEvent, WebhookAttempt, CancelRequest):
                session.execute(delete(table).where(col(table.run_id).in_(gone)))
            removed = session.execute(delete(AgentRun).where(finished, old)).rowcount  # type: ignore[attr-defined]
            session.commit()
        return int(removed or 0)


CANCELLED_QUEUED = "Cancelled while no worker had it"
# A run in these is held by no worker: cancelled at once.
NOT_STARTED = (RunStatus.QUEUED, RunStatus.AWAITING_APPROVAL)


def cancel_was_requested(run_id: int) -> Any:
    """True when someone asked to cancel the run: for a RETURNING clause."""
    return select(CancelRequest.run_id).where(CancelRequest.run_id == run_id).exists()


def status_event(
    run_id: int, attempt: int, status: RunStatus, detail: str | None
) -> AgentRunEvent:
    data = {"status": status, "detail": detail}
    return AgentRunEvent(run_id=run_id, attempt=attempt, type=AgentEventType.STATUS, data=data)
