"""Turns that wait for a person: the agents ask before they destroy.

A tool in APPROVAL_REQUIRED_TOOLS is given to the agents with the SDK's `needs_approval`. When
the model calls it, the run stops before the tool runs; its `interruptions` are the calls that
wait. The SDK's RunState holds all the run needs to go on (its input, the model's answers so
far, which agent is speaking), and `to_json` makes it data. Here that data is stored with the
turn (`PausedTurn`), each waiting call as an `Approval` of the turn's owner. A decision applies
`approve` or `reject` to the state, loaded again, and the run goes on from it in whichever
process takes it up: the API process that heard the decision, or a worker for a background run.

A stored state is resumed only by the agents that made it. `agents_version` is a digest of the
agents, their tools and the tools' schemas: a state made by other agents (an older release, with
other tools or other arguments) is refused, as is one the SDK cannot read (StaleApproval).
"""

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from agents import Agent, FunctionTool, RunState, Tool
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from task_api.agents.tools import TaskContext
from task_api.errors import ApprovalClosed, ApprovalNotFound
from task_api.events import Notifier
from task_api.models import (
    Approval,
    ApprovalPublic,
    ApprovalStatus,
    PausedTurn,
    in_utc,
    utc_now,
)
from task_api.runs.models import AgentRun, RunStatus
from task_api.runs.queue import QUEUE_CHANNEL, run_channel, status_event


def new_approval_id() -> str:
    return uuid.uuid4().hex


def needing_approval(tools: list[Tool], names: frozenset[str]) -> list[Tool]:
    """The tools, those named given the SDK's `needs_approval`: a call waits for a decision."""
    return [
        dataclasses.replace(tool, needs_approval=True)
        if isinstance(tool, FunctionTool) and tool.name in names
        else tool
        for tool in tools
    ]


def team_of(agents: Agent[Any]) -> list[Agent[Any]]:
    """The triage agent and the agents it hands off to."""
    return [agents, *(agent for agent in agents.handoffs if isinstance(agent, Agent))]


def agents_version(agents: Agent[Any]) -> str:
    """A digest of what a stored state depends on: each agent's name, handoffs and tools (their
    names, argument schemas and whether they need approval)."""
    described = [
        {
            "agent": agent.name,
            "handoffs": [getattr(h, "name", getattr(h, "agent_name", "")) for h in agent.handoffs],
            "tools": [
                [tool.name, tool.params_json_schema, tool.needs_approval is not False]
                for tool in agent.tools
                if isinstance(tool, FunctionTool)
            ],
        }
        for agent in team_of(agents)
    ]
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def rejection(approval: Approval) -> str:
    """What the model hears instead of the tool's output when the call was refused: an error,
    as a failed tool's answer, that it can pass on to the user."""
    if approval.status == ApprovalStatus.EXPIRED:
        why = "Not approved in time"
    else:
        why = "Not approved by the user" + (f": {approval.reason}" if approval.reason else "")
    return json.dumps({"error": why, "rejected": True})


def was_rejected(output: str) -> bool:
    """Whether a tool's output is a `rejection`: the call did not run."""
    try:
        answer = json.loads(output)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("rejected") is True


class StaleApproval(ApprovalClosed):
    def __init__(self, approval_id: str) -> None:
        super().__init__(
            f"Approval {approval_id} was asked for by another version of the agents, and "
            "cannot be resumed: send your request again"
        )


@dataclass
class Resumed:
    """A paused turn going on after a decision: its state, with the decisions applied."""

    pause_id: int
    state: RunState[TaskContext, Agent[TaskContext]]
    history_length: int
    decided: list[Approval]  # shown again as `tool_call` events, then their outputs follow
    waiting: dict[str, str]  # call id -> approval id, for calls still undecided


async def load_state(
    agents: Agent[TaskContext],
    pause: PausedTurn,
    approvals: list[Approval],
    context: TaskContext,
    approval_id: str,
) -> Resumed:
    """The pause's RunState, loaded for `context` (the owner's, built now: the stored state names
    no user), each decided call approved or rejected. StaleApproval if these agents did not
    make it."""
    assert pause.id is not None
    if pause.state is None or pause.agents_version != agents_version(agents):
        raise StaleApproval(approval_id)
    try:
        state = await RunState.from_json(agents, pause.state, context_override=context)
    except Exception:  # a schema version this SDK does not read, or agents it does not know
        raise StaleApproval(approval_id) from None
    by_call = {approval.call_id: approval for approval in approvals}
    decided, waiting = [], {}
    for item in state.get_interruptions():
        approval = by_call.get(item.call_id or "")
        if approval is None:
            raise StaleApproval(approval_id)
        if approval.status == ApprovalStatus.PENDING:
            waiting[approval.call_id] = approval.id
            continue
        decided.append(approval)
        if approval.status == ApprovalStatus.APPROVED:
            state.approve(item)
        else:
            state.reject(item, rejection_message=rejection(approval))
    return Resumed(pause.id, state, pause.history_length, decided, waiting)


def save_pause(session: Session, pause: PausedTurn, new_approvals: list[Approval]) -> None:
    """Store a paused turn (a new one, or a resumed one that paused again: the same row) and the
    approvals of its new calls, in the caller's transaction. A call still undecided from before
    keeps its approval, and its id."""
    stored = session.merge(pause)
    session.flush()  # the pause's id, for its approvals
    for approval in new_approvals:
        approval.paused_turn_id = stored.id  # type: ignore[assignment]
        session.add(approval)


def end_pause(session: Session, pause_id: int) -> None:
    """The paused turn went on to its end: its state is no longer needed (caller commits)."""
    session.execute(update(PausedTurn).where(col(PausedTurn.id) == pause_id).values(state=None))


class ApprovalStore:
    """One user's approvals. Every method is one transaction, on a session of its own."""

    def __init__(self, engine: Engine, notifier: Notifier, owner_id: int) -> None:
        self.engine = engine
        self.notifier = notifier
        self.owner_id = owner_id

    def list_pending(self) -> list[ApprovalPublic]:
        """The approvals that still wait for the owner, oldest first."""
        query = (
            select(Approval, PausedTurn)
            .join(PausedTurn, col(Approval.paused_turn_id) == col(PausedTurn.id))
            .where(
                Approval.owner_id == self.owner_id,
                Approval.status == ApprovalStatus.PENDING,
                col(PausedTurn.taken_at).is_(None),
                col(PausedTurn.state).is_not(None),
                col(PausedTurn.expires_at) > utc_now(),  # expired: rejected, even if not swept
            )
            .order_by(col(Approval.created_at), col(Approval.id))
            .limit(100)
        )
        with Session(self.engine) as session:
            return [public(approval, pause) for approval, pause in session.exec(query).all()]

    def find(self, approval_id: str) -> tuple[Approval, PausedTurn, list[Approval]]:
        """The owner's approval, its paused turn and all the turn's approvals; someone else's
        approval is "not found", as for every object."""
        with Session(self.engine) as session:
            approval = session.get(Approval, approval_id)
            if approval is None or approval.owner_id != self.owner_id:
                raise ApprovalNotFound(approval_id)
            pause = session.get(PausedTurn, approval.paused_turn_id)
            assert pause is not None
            return approval, pause, approvals_of(session, pause)

    def decide(self, approval_id: str, approve: bool, reason: str | None) -> PausedTurn:
        """Record the owner's decision and take the paused turn to go on, in one transaction:
        a decision is made once (409 the second time), and a paused turn goes on once.

        A background run's turn is queued again, for a worker to resume; a chat's is returned,
        for the caller to resume.
        """
        now = utc_now()
        status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
        with Session(self.engine, expire_on_commit=False) as session:
            approval = session.get(Approval, approval_id)
            if approval is None or approval.owner_id != self.owner_id:
                raise ApprovalNotFound(approval_id)
            decided = session.execute(
                update(Approval)
                .where(Approval.id == approval_id, Approval.status == ApprovalStatus.PENDING)
                .values(status=status, reason=reason, decided_at=now)
            ).rowcount  # type: ignore[attr-defined]
            pause = session.scalars(
                update(PausedTurn)
                .where(
                    col(PausedTurn.id) == approval.paused_turn_id,
                    col(PausedTurn.taken_at).is_(None),
                    col(PausedTurn.state).is_not(None),
                    col(PausedTurn.expires_at) > now,
                )
                .values(taken_at=now)
                .returning(PausedTurn)
            ).first()
            if not decided or pause is None:
                session.rollback()
                raise ApprovalClosed(self.why_closed(approval_id))
            detail = f"{status.capitalize()}: {approval.tool}"
            if pause.run_id is not None and not queue_again(session, pause.run_id, detail):
                session.rollback()  # cancelled meanwhile
                raise ApprovalClosed(f"Approval {approval_id}'s run no longer waits for it")
            session.commit()
        if pause.run_id is not None:
            self.notifier.notify(run_channel(pause.run_id))
            self.notifier.notify(QUEUE_CHANNEL)
        return pause

    def why_closed(self, approval_id: str) -> str:
        """Why a decision cannot be taken, in words for the 409."""
        approval, pause, _ = self.find(approval_id)
        expired = approval.status == ApprovalStatus.EXPIRED or (
            pause.taken_at is None and in_utc(pause.expires_at) <= utc_now()
        )
        if expired:
            return f"Approval {approval_id} expired: it counts as rejected"
        if approval.status != ApprovalStatus.PENDING:
            return f"Approval {approval_id} was {approval.status} already"
        if pause.state is None:
            return f"Approval {approval_id}'s turn has ended"
        return (
            f"Approval {approval_id}'s turn is going on without a decision on it: "
            "decide it when the turn asks again"
        )


def queue_again(session: Session, run_id: int, detail: str) -> bool:
    """A background run whose approval was decided waits in the queue for a worker again, and
    its webhook will be due again when it next stops (caller commits). False if the run no
    longer waits (it was cancelled)."""
    queued = session.execute(
        update(AgentRun)
        .where(col(AgentRun.id) == run_id, AgentRun.status == RunStatus.AWAITING_APPROVAL)
        .values(status=RunStatus.QUEUED, detail=detail, webhook_done_at=None)
        .returning(AgentRun.attempt)
    ).first()
    if queued is None:
        return False
    session.add(status_event(run_id, queued.attempt, RunStatus.QUEUED, detail))
    return True


def expire_pauses(engine: Engine, notifier: Notifier, limit: int = 20) -> list[PausedTurn]:
    """Take the paused turns whose approvals were not decided in time: their undecided
    approvals count as rejected. A background run's is queued again; chats' are returned, for
    the worker to take to their end. Any process may call this; each pause is taken once."""
    now = utc_now()
    with Session(engine, expire_on_commit=False) as session:
        due = session.exec(
            select(PausedTurn)
            .where(
                col(PausedTurn.taken_at).is_(None),
                col(PausedTurn.state).is_not(None),
                col(PausedTurn.expires_at) <= now,
            )
            .order_by(col(PausedTurn.expires_at))
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for pause in due:
            pause.taken_at = now
            session.add(pause)
            session.execute(
                update(Approval)
                .where(
                    Approval.paused_turn_id == pause.id,
                    Approval.status == ApprovalStatus.PENDING,
                )
                .values(status=ApprovalStatus.EXPIRED, decided_at=now)
            )
            if pause.run_id is not None:
                queue_again(session, pause.run_id, "Not approved in time")
        session.commit()
    for pause in due:
        if pause.run_id is not None:
            notifier.notify(run_channel(pause.run_id))
    if any(pause.run_id is not None for pause in due):
        notifier.notify(QUEUE_CHANNEL)
    return [pause for pause in due if pause.run_id is None]


def paused_turn_of_run(engine: Engine, run_id: int) -> tuple[PausedTurn, list[Approval]] | None:
    """The paused turn a background run goes on from, if it stopped for an approval."""
    with Session(engine) as session:
        pause = session.exec(
            select(PausedTurn).where(
                PausedTurn.run_id == run_id, col(PausedTurn.state).is_not(None)
            )
        ).first()
        if pause is None:
            return None
        return pause, approvals_of(session, pause)


def approvals_of(session: Session, pause: PausedTurn) -> list[Approval]:
    return list(session.exec(select(Approval).where(Approval.paused_turn_id == pause.id)))


def approvals_of_pause(engine: Engine, pause: PausedTurn) -> list[Approval]:
    with Session(engine) as session:
        return approvals_of(session, pause)


def public(approval: Approval, pause: PausedTurn) -> ApprovalPublic:
    return ApprovalPublic(
        id=approval.id,
        tool=approval.tool,
        arguments=approval.arguments,
        agent=approval.agent,
        status=approval.status,
        reason=approval.reason,
        session_id=pause.conversation_id,
        run_id=pause.run_id,
        created_at=approval.created_at,
        expires_at=pause.expires_at,
    )


def end_paused_turn(engine: Engine, pause: PausedTurn) -> None:
    """Give up a paused turn that cannot go on (a stale state), in a transaction of its own."""
    assert pause.id is not None
    with Session(engine) as session:
        end_pause(session, pause.id)
        session.commit()
