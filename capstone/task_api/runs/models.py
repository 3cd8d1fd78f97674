"""The shapes of background runs: the queue's table, a run's events and webhook attempts, and
what the API reads and writes about them."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, StringConstraints
from sqlmodel import Field, SQLModel

from task_api.models import (
    NEVER_REUSE_IDS,
    ConversationId,
    Prompt,
    RequestBody,
    UtcDateTime,
    enum_column,
    reject_nul,
    timestamp,
)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"  # a tool call waits for its owner's decision
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_STATUSES = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
# The statuses a run's webhook is told of: its final one, and each wait for an approval.
ANNOUNCED_STATUSES = (*FINAL_STATUSES, RunStatus.AWAITING_APPROVAL)


class RunPriority(StrEnum):
    HIGH = "high"
    NORMAL = "normal"


# A run's webhook, not yet delivered for its status: any worker takes it up (queue.claim_delivery).
WEBHOOK_DUE = sa.text("webhook_url IS NOT NULL AND webhook_done_at IS NULL")


class AgentRun(SQLModel, table=True):
    """A background run: its request, its state in the queue, and what came of it."""

    __tablename__ = "agent_run"
    __table_args__ = (
        # A client's Idempotency-Key names one run of theirs: a retried POST finds it.
        sa.UniqueConstraint("owner_id", "idempotency_key", name="uq_agent_run_idempotency_key"),
        # The webhooks still to deliver: few rows, found at once however many runs there are.
        sa.Index(
            "ix_agent_run_webhook_due",
            "finished_at",
            postgresql_where=WEBHOOK_DUE,
            sqlite_where=WEBHOOK_DUE,
        ),
        NEVER_REUSE_IDS,
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    message: str
    conversation_id: str | None = Field(default=None, max_length=64)
    priority: RunPriority = Field(default=RunPriority.NORMAL, sa_type=enum_column(RunPriority))
    status: RunStatus = Field(default=RunStatus.QUEUED, sa_type=enum_column(RunStatus), index=True)
    # Raised by each claim: a worker writes only while the run's attempt is still its own.
    attempt: int = 0
    # The worker that holds the run, and until when: while it runs, then while it delivers
    # the run's webhook.
    lease_owner: str | None = Field(default=None, max_length=100)
    lease_expires_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    # Set, in the same transaction, before a tool changes anything: such a run is not retried.
    made_tool_call: bool = False
    progress_percent: int | None = None
    progress_message: str | None = Field(default=None, max_length=200)
    result: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON)
    detail: str | None = Field(default=None, max_length=500)
    webhook_url: str | None = Field(default=None, max_length=2000)
    # When its status was delivered to webhook_url, or given up on; until then, due (once the
    # status is final, or awaiting_approval).
    webhook_done_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    idempotency_key: str | None = Field(default=None, max_length=100)
    created_at: datetime = timestamp()
    started_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    finished_at: datetime | None = Field(
        default=None, sa_type=sa.DateTime(timezone=True), index=True
    )


class CancelRequest(SQLModel, table=True):
    """Someone asked to cancel a running run: its worker stops it at its next step.

    A row of its own, not a column of the run: a worker holds the run's row locked while it
    writes, and asking to cancel must never wait for a worker (one may be stuck).
    """

    __tablename__ = "agent_run_cancel"

    run_id: int = Field(foreign_key="agent_run.id", primary_key=True, ondelete="CASCADE")
    created_at: datetime = timestamp()


class AgentRunEvent(SQLModel, table=True):
    """One event of a run, in the order it happened: replayed to any client, from any process."""

    __tablename__ = "agent_run_event"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)  # the SSE event id
    run_id: int = Field(foreign_key="agent_run.id", index=True, ondelete="CASCADE")
    attempt: int
    type: str = Field(max_length=20)  # an AgentEventType
    data: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: datetime = timestamp()


class WebhookAttempt(SQLModel, table=True):
    """One try to deliver a run's final status to its webhook_url."""

    __tablename__ = "webhook_attempt"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="agent_run.id", index=True, ondelete="CASCADE")
    # The message tried (its webhook-id): the final status, or one wait for an approval.
    message_id: str | None = Field(default=None, max_length=100, index=True)
    status_code: int | None = None  # the receiver's answer; None when there was none
    error: str | None = Field(default=None, max_length=200)
    created_at: datetime = timestamp()


WebhookUrl = Annotated[str, StringConstraints(max_length=2000), AfterValidator(reject_nul)]


class RunCreate(RequestBody):
    """A message for the agents to work on in the background."""

    message: Prompt = Field(schema_extra={"examples": ["Plan my week"]})
    session_id: ConversationId | None = Field(
        default=None, description="Continue this conversation; leave out for a new one."
    )
    priority: RunPriority = Field(
        default=RunPriority.NORMAL, description="high runs are taken before normal ones"
    )
    webhook_url: WebhookUrl | None = Field(
        default=None,
        description="Where to POST the run's final status, signed as Standard Webhooks say "
        "(webhook-id, webhook-timestamp, webhook-signature)",
    )


class RunAccepted(BaseModel):
    id: int
    status: RunStatus
    status_url: str
    events_url: str


class Progress(BaseModel):
    percent: int
    message: str


class WebhookAttemptPublic(BaseModel):
    status_code: int | None
    error: str | None
    created_at: UtcDateTime


class RunPublic(BaseModel):
    id: int
    status: RunStatus
    priority: RunPriority
    message: str
    session_id: str | None
    attempt: int
    progress: Progress | None
    result: dict[str, Any] | None = Field(
        description="Once done: reply, session_id, agent, usage, model, duration_ms, "
        "tool_calls (how many) and failed_tool_calls (each: the tool and why)"
    )
    detail: str | None = Field(
        description="Why it failed (every tool call failing counts), or was cancelled"
    )
    cancel_requested: bool = Field(description="Cancel was asked for: it stops at its next step")
    webhook_url: str | None
    webhook_attempts: list[WebhookAttemptPublic]
    created_at: UtcDateTime
    started_at: UtcDateTime | None
    finished_at: UtcDateTime | None
