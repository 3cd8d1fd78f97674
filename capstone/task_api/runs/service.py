"""The rules of one user's background runs, whichever process answers: the routes call this."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress

from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session

from task_api.config import Settings
from task_api.errors import RunFinished, RunNotFound, TooManyRequests, WebhookRefused
from task_api.events import AgentEventType
from task_api.memory import ConversationStore
from task_api.runs.models import (
    ANNOUNCED_STATUSES,
    FINAL_STATUSES,
    AgentRun,
    AgentRunEvent,
    Progress,
    RunCreate,
    RunPublic,
    RunStatus,
    WebhookAttemptPublic,
)
from task_api.runs.queue import RunQueue, run_channel
from task_api.runs.webhooks import UnsafeWebhook, resolve_webhook


class RunService:
    """One user's runs. Each method reads or writes through the queue, a short transaction at a
    time: waiting for a run, or following its events, holds no database connection."""

    def __init__(self, queue: RunQueue, owner_id: int, settings: Settings) -> None:
        self.queue = queue
        self.owner_id = owner_id
        self.settings = settings

    def create_run(self, data: RunCreate, idempotency_key: str | None = None) -> AgentRun:
        """Queue the run, once its conversation and webhook are known to be fine, and the
        user has fewer than MAX_QUEUED_RUNS_PER_USER waiting. Blocking.

        A client that did not hear the answer (a timeout) sends the same request again with
        the same Idempotency-Key, and gets the run it made the first time, not a second one.
        """
        if (made := self.queue.made_with(self.owner_id, idempotency_key)) is not None:
            return made
        cap = self.settings.max_queued_runs_per_user
        if self.queue.count_queued(self.owner_id) >= cap:
            raise TooManyRequests(f"{cap} queued runs", retry_after=10)
        if data.session_id is not None:
            with Session(self.queue.engine) as session:  # 404 for a conversation not theirs
                ConversationStore(session, self.owner_id).get(data.session_id)
        if data.webhook_url is not None:
            if self.settings.webhook_secret is None:
                raise WebhookRefused(
                    "Webhooks are off here: the operator has not set WEBHOOK_SECRET"
                )
            try:
                resolve_webhook(data.webhook_url, self.settings.webhook_allow_private)
            except UnsafeWebhook as refused:
                raise WebhookRefused(str(refused)) from None
        return self.queue.enqueue(self.owner_id, data, idempotency_key)

    def get_run(self, run_id: int) -> AgentRun:
        # Someone else's run is "not found" too, as for tasks.
        run = self.queue.get(self.owner_id, run_id)
        if run is None:
            raise RunNotFound(run_id)
        return run

    def list_runs(self, status: RunStatus | None, limit: int, offset: int) -> list[RunPublic]:
        runs = self.queue.list_runs(self.owner_id, status, limit, offset)
        return [self.public(run) for run in runs]

    def read_run(self, run_id: int) -> RunPublic:
        return self.public(self.get_run(run_id))

    async def wait_for_result(self, run_id: int, seconds: float) -> RunPublic:
        """The run once it is final or waits for its owner's approval, or as it is after
        `seconds`."""
        run = await run_in_threadpool(self.get_run, run_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        with self.queue.notifier.listening(run_channel(run_id)) as signal:
            while run.status not in ANNOUNCED_STATUSES and loop.time() < deadline:
                with suppress(TimeoutError):
                    await asyncio.wait_for(signal.wait(), deadline - loop.time())
                run = await run_in_threadpool(self.get_run, run_id)
        return await run_in_threadpool(self.public, run)

    async def follow_events(
        self, run_id: int, after: int, still_allowed: Callable[[], Awaitable[bool]]
    ) -> AsyncIterator[AgentRunEvent]:
        """The run's events after the id `after`, then live ones as they are written, until
        the event that carries its final status, or until `still_allowed()` says no (the
        caller's credentials ended).
        The caller has found the run with get_run."""
        with self.queue.notifier.listening(run_channel(run_id)) as signal:
            while True:
                events = await run_in_threadpool(self.queue.events_after, run_id, after)
                for event in events:
                    yield event
                    after = event.id  # type: ignore[assignment]
                    if is_final(event):
                        return
                if not events:
                    await signal.wait()
                if not await still_allowed():
                    return

    def cancel_run(self, run_id: int) -> RunPublic:
        """A queued run is cancelled at once, a running one at its next step (it says
        `cancel_requested`); a finished one is RunFinished."""
        run = self.get_run(run_id)
        if run.status in FINAL_STATUSES:
            raise RunFinished(run_id, run.status)
        self.queue.request_cancel(run_id)
        return self.read_run(run_id)

    def public(self, run: AgentRun) -> RunPublic:
        """The run as the API shows it, with its webhook's attempts. Blocking."""
        assert run.id is not None
        progress = None
        if run.progress_percent is not None:
            progress = Progress(percent=run.progress_percent, message=run.progress_message or "")
        attempts = [
            WebhookAttemptPublic.model_validate(attempt.model_dump())
            for attempt in self.queue.webhook_attempts(run.id)
        ]
        return RunPublic.model_validate(
            {
                **run.model_dump(),
                "session_id": run.conversation_id,
                "cancel_requested": self.queue.cancel_requested(run.id),
                "progress": progress,
                "webhook_attempts": attempts,
            }
        )


def is_final(event: AgentRunEvent) -> bool:
    """The event that ends a run's stream: the one that carries its final status."""
    return event.type == AgentEventType.STATUS and event.data.get("status") in FINAL_STATUSES
