"""The run queue on its own: claims, priorities, leases, fencing, recovery and retention."""

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from agents.testing import ScriptedModel, assistant_message, function_call
from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from task_api.agents.team import build_agents
from task_api.agents.turns import Done, ToolOutput, Turn, TurnEvent, run_turn, start_turn
from task_api.config import Settings
from task_api.database import create_db_engine, migrate
from task_api.events import AgentEventType, Notifier, TaskEventBroker
from task_api.models import Conversation, Task, User, utc_now
from task_api.runs.errors import CancelRequested, LeaseLost
from task_api.runs.models import AgentRun, AgentRunEvent, RunCreate, RunStatus
from task_api.runs.queue import RunQueue


@pytest.fixture
def engine(isolated_database_url: str) -> Iterator[Engine]:
    if isolated_database_url.startswith("sqlite"):
        migrate(isolated_database_url)  # PostgreSQL's isolated schema is migrated already
    engine = create_db_engine(isolated_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def owner(engine: Engine) -> int:
    with Session(engine) as session:
        user = User(username="alice", hashed_password="x")
        session.add(user)
        session.commit()
        assert user.id is not None
        return user.id


@pytest.fixture
def queue(engine: Engine) -> RunQueue:
    return RunQueue(engine, Notifier(), lease_seconds=30)


def run_of(engine: Engine, run_id: int) -> AgentRun:
    with Session(engine) as session:
        run = session.get(AgentRun, run_id)
        assert run is not None
        return run


def events_of(engine: Engine, run_id: int) -> list[tuple[str, dict[str, object]]]:
    with Session(engine) as session:
        query = (
            select(AgentRunEvent)
            .where(AgentRunEvent.run_id == run_id)
            .order_by(col(AgentRunEvent.id))
        )
        return [(e.type, e.data) for e in session.exec(query)]


def expire_lease(engine: Engine, run_id: int) -> None:
    """As if its worker died: the lease ran out a moment ago."""
    with Session(engine) as session:
        session.execute(
            update(AgentRun)
            .where(col(AgentRun.id) == run_id)
            .values(lease_expires_at=utc_now() - timedelta(seconds=1))
        )
        session.commit()


def test_high_priority_first_then_the_oldest(queue: RunQueue, owner: int) -> None:
    normal = queue.enqueue(owner, RunCreate(message="first"))
    high = queue.enqueue(owner, RunCreate(message="second", priority="high"))
    later = queue.enqueue(owner, RunCreate(message="third"))

    order = [queue.claim("w").run_id for _ in range(3)]  # type: ignore[union-attr]

    assert order == [high.id, normal.id, later.id]
    assert queue.claim("w") is None


def test_one_user_cannot_keep_another_waiting(queue: RunQueue, owner: int, engine: Engine) -> None:
    with Session(engine) as session:
        bob = User(username="bob", hashed_password="x")
        session.add(bob)
        session.commit()
        assert bob.id is not None
        other = bob.id
    many = [queue.enqueue(owner, RunCreate(message="mine", priority="high")) for _ in range(5)]
    bobs = queue.enqueue(other, RunCreate(message="bob's, later and normal"))

    first, second = queue.claim("w"), queue.claim("w")

    assert first is not None and second is not None
    assert (first.run_id, second.run_id) == (many[0].id, bobs.id)


def test_with_one_worker_too_the_user_served_longest_ago_goes_next(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    with Session(engine) as session:
        bob = User(username="bob", hashed_password="x")
        session.add(bob)
        session.commit()
        assert bob.id is not None
        other = bob.id
    mine = [queue.enqueue(owner, RunCreate(message="mine", priority="high")) for _ in range(4)]
    claim = queue.claim("w")
    assert claim is not None and claim.run_id == mine[0].id
    queue.finish(claim, RunStatus.SUCCEEDED)  # one slot, free again; alice has three waiting
    bobs = queue.enqueue(other, RunCreate(message="bob's, later and normal"))

    following = queue.claim("w")

    assert following is not None and following.run_id == bobs.id


def test_a_claim_raises_the_attempt_and_takes_a_lease(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run = queue.enqueue(owner, RunCreate(message="hi"))

    claim = queue.claim("worker-1")

    assert claim is not None and claim.attempt == 1
    stored = run_of(engine, run.id)  # type: ignore[arg-type]
    assert (stored.status, stored.lease_owner) == (RunStatus.RUNNING, "worker-1")
    assert stored.lease_expires_at is not None


def test_an_interrupted_run_without_a_tool_call_is_queued_again(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run_id = queue.enqueue(owner, RunCreate(message="hi")).id
    assert run_id is not None
    first = queue.claim("crashed")
    expire_lease(engine, run_id)

    assert queue.recover() == [run_id]

    assert run_of(engine, run_id).status == RunStatus.QUEUED
    second = queue.claim("healthy")
    assert second is not None and first is not None
    assert (second.run_id, second.attempt) == (run_id, first.attempt + 1)


def test_a_run_interrupted_again_and_again_is_failed_at_last(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run_id = queue.enqueue(owner, RunCreate(message="hi")).id
    assert run_id is not None
    for _ in range(3):  # each of its workers dies before any tool call
        assert queue.claim("doomed") is not None
        expire_lease(engine, run_id)
        queue.recover()

    run = run_of(engine, run_id)
    assert (run.status, run.attempt) == (RunStatus.FAILED, 3)
    assert run.detail == "Interrupted (its worker stopped) 3 times: not retried again"
    assert queue.claim("another") is None


def test_an_interrupted_run_that_called_a_tool_fails_and_is_not_retried(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run_id = queue.enqueue(owner, RunCreate(message="hi")).id
    assert run_id is not None
    claim = queue.claim("crashed")
    assert claim is not None
    with Session(engine) as session:  # what a tool does before it changes a task
        queue.fence(session, claim, changes_tasks=True)
        session.commit()
    expire_lease(engine, run_id)

    queue.recover()

    run = run_of(engine, run_id)
    assert run.status == RunStatus.FAILED
    assert run.detail is not None and "after it had called a tool: not retried" in run.detail
    assert queue.claim("healthy") is None
    assert events_of(engine, run_id)[-1] == ("status", {"status": "failed", "detail": run.detail})


def test_a_worker_that_lost_its_lease_can_change_nothing(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run_id = queue.enqueue(owner, RunCreate(message="hi")).id
    assert run_id is not None
    old = queue.claim("slow")
    expire_lease(engine, run_id)
    queue.recover()
    new = queue.claim("fast")
    assert old is not None and new is not None

    with pytest.raises(LeaseLost):
        queue.append(old, AgentEventType.DELTA, {"text": "late"})
    with pytest.raises(LeaseLost), Session(engine) as session:
        queue.fence(session, old, changes_tasks=True)
    with pytest.raises(LeaseLost):
        queue.renew(old)
    assert queue.finish(old, RunStatus.SUCCEEDED, result={"reply": "late"}) is False

    queue.append(new, AgentEventType.DELTA, {"text": "on time"})
    assert queue.finish(new, RunStatus.SUCCEEDED, result={"reply": "on time"})
    run = run_of(engine, run_id)
    assert (run.status, run.result) == (RunStatus.SUCCEEDED, {"reply": "on time"})
    assert ("delta", {"text": "late"}) not in events_of(engine, run_id)


def test_the_tools_of_a_worker_that_lost_its_lease_change_no_task(
    queue: RunQueue, owner: int, engine: Engine, settings: Settings
) -> None:
    run_id = queue.enqueue(owner, RunCreate(message="Add a task to buy milk")).id
    assert run_id is not None
    old = queue.claim("slow")
    expire_lease(engine, run_id)
    queue.recover()
    assert old is not None and queue.claim("fast") is not None
    model = ScriptedModel(
        [
            [function_call("transfer_to_clerk", {}, call_id="h1")],
            [function_call("create_task", {"title": "Buy milk"}, call_id="c1")],
            [assistant_message("Added.")],
        ]
    )
    # The slow worker's turn goes on under its old claim: only the fence in the tool stops it.
    broker = TaskEventBroker(engine, Notifier())
    turn = start_turn(engine, broker, owner, "Add a task to buy milk", None, run=old)
    seen: list[TurnEvent] = []

    asyncio.run(run_into(seen, turn, model, settings))

    outputs = [json.loads(e.output) for e in seen if isinstance(e, ToolOutput)]
    assert outputs == [{"error": "The run is stopping"}]
    done = seen[-1]
    assert isinstance(done, Done)
    # Its end, the turn saved with the final status, changes nothing either.
    finished = queue.finish(
        old, RunStatus.SUCCEEDED, turn=lambda session: turn.save(session, done.items)
    )
    assert finished is False
    with Session(engine) as session:
        assert session.exec(select(Task)).all() == []
        assert session.exec(select(Conversation)).all() == []
    model.assert_complete()


def test_a_runs_end_is_one_step_its_turn_its_done_event_and_its_status(
    queue: RunQueue,
    owner: int,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run_id = queue.enqueue(owner, RunCreate(message="Hello there")).id
    assert run_id is not None
    claim = queue.claim("dies")
    assert claim is not None
    broker = TaskEventBroker(engine, Notifier())
    turn = start_turn(engine, broker, owner, "Hello there", None, run=claim)
    seen: list[TurnEvent] = []
    asyncio.run(run_into(seen, turn, ScriptedModel([[assistant_message("Hi!")]]), settings))
    done = seen[-1]
    assert isinstance(done, Done)

    def save(session: Session) -> None:
        turn.save(session, done.items)
        session.add(claim.event(done.type, {"reply": done.reply}))

    def dies(*args: object) -> None:  # the worker stops after the turn was written
        raise SystemExit

    monkeypatch.setattr("task_api.runs.queue.status_event", dies)
    with pytest.raises(SystemExit):
        queue.finish(claim, RunStatus.SUCCEEDED, result={"reply": "Hi!"}, turn=save)

    # Nothing of its end is kept: done again, it is saved once.
    assert run_of(engine, run_id).status == RunStatus.RUNNING
    assert [kind for kind, _ in events_of(engine, run_id)] == []
    with Session(engine) as session:
        assert session.exec(select(Conversation)).all() == []
    monkeypatch.undo()
    expire_lease(engine, run_id)
    queue.recover()
    again = queue.claim("healthy")
    assert again is not None
    assert queue.finish(again, RunStatus.SUCCEEDED, result={"reply": "Hi!"})
    assert run_of(engine, run_id).status == RunStatus.SUCCEEDED


async def run_into(
    seen: list[TurnEvent], turn: Turn, model: ScriptedModel, settings: Settings
) -> None:
    agents = build_agents(model, settings.approval_required_tools)
    async for event in run_turn(agents, turn, settings):
        seen.append(event)


def test_a_cancel_reaches_the_worker_at_its_next_write(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run = queue.enqueue(owner, RunCreate(message="hi"))
    claim = queue.claim("w")
    assert claim is not None

    queue.request_cancel(run.id)

    with pytest.raises(CancelRequested):
        queue.append(claim, AgentEventType.DELTA, {"text": "more"})
    with pytest.raises(CancelRequested):
        queue.renew(claim)


def test_a_cancelled_run_still_reports_what_it_did(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run = queue.enqueue(owner, RunCreate(message="Plan my week"))
    assert run.id is not None
    claim = queue.claim("w")
    assert claim is not None
    queue.request_cancel(run.id)  # while its second task was being made

    with pytest.raises(CancelRequested):  # it stops here ...
        claim.report_progress(50, "Planned 2 of 4")

    stored = run_of(engine, run.id)  # ... and says how far it came
    assert (stored.progress_percent, stored.progress_message) == (50, "Planned 2 of 4")


def test_a_queued_run_is_cancelled_at_once(queue: RunQueue, owner: int, engine: Engine) -> None:
    run = queue.enqueue(owner, RunCreate(message="hi"))

    queue.request_cancel(run.id)

    assert run_of(engine, run.id).status == RunStatus.CANCELLED
    assert queue.claim("w") is None


def test_a_cancel_never_waits_for_a_worker_that_holds_the_run(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: every write waits for a held one")
    run_id = queue.enqueue(owner, RunCreate(message="Add a task")).id
    assert run_id is not None
    claim = queue.claim("stuck")
    assert claim is not None
    with Session(engine) as stuck:  # a worker stopped in the middle of a tool's transaction
        queue.fence(stuck, claim, changes_tasks=True)

        queue.request_cancel(run_id)  # would wait for the lock, then fail (lock_timeout)

        assert queue.cancel_requested(run_id)
        stuck.commit()
    with pytest.raises(CancelRequested):  # the worker's next step stops the run
        queue.renew(claim)


def test_a_run_being_claimed_is_asked_to_stop_not_waited_for(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: every write waits for a held one")
    run_id = queue.enqueue(owner, RunCreate(message="hi")).id
    with Session(engine) as claiming:  # a claim that has the queued row locked, not yet done
        claiming.exec(
            select(AgentRun).where(AgentRun.id == run_id).with_for_update(key_share=True)
        ).one()

        queue.request_cancel(run_id)

        claiming.commit()
    claim = queue.claim("w")
    assert claim is not None
    with pytest.raises(CancelRequested):
        queue.renew(claim)


def finished_by_everyone(queue: RunQueue, owner: int, engine: Engine) -> dict[str, int]:
    """A run with a webhook ended each way a run ends, and one still running."""
    made = {
        name: queue.enqueue(owner, RunCreate(message=name, webhook_url="https://example.com/h"))
        for name in ("worker", "recovery", "shutdown", "cancel", "running")
    }
    ids = {name: run.id for name, run in made.items() if run.id is not None}
    queue.request_cancel(ids["cancel"])  # while it is queued
    by_message = {}
    while (claim := queue.claim("w")) is not None:
        by_message[claim.message] = claim
    queue.finish(by_message["worker"], RunStatus.SUCCEEDED, result={})
    with Session(engine) as session:
        queue.fence(session, by_message["recovery"], changes_tasks=True)
        session.commit()
    expire_lease(engine, ids["recovery"])
    queue.recover()
    with Session(engine) as session:
        queue.fence(session, by_message["shutdown"], changes_tasks=True)
        session.commit()
    queue.hand_back(by_message["shutdown"], "its worker shut down")
    expire_lease(engine, ids["running"])  # its worker died a moment ago: not yet taken up
    return ids


def test_every_final_status_is_due_for_its_webhook_whoever_set_it(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    ids = finished_by_everyone(queue, owner, engine)

    due = []
    while (run := queue.claim_delivery("w", lease_seconds=90)) is not None:
        due.append((run.id, run.status))
        queue.delivered(run.id, run.status)  # type: ignore[arg-type]

    assert sorted(due) == sorted(
        [
            (ids["worker"], RunStatus.SUCCEEDED),
            (ids["recovery"], RunStatus.FAILED),
            (ids["shutdown"], RunStatus.FAILED),
            (ids["cancel"], RunStatus.CANCELLED),
        ]
    )  # and never the running one: a delivery always carries a final status
    assert queue.claim_delivery("w", lease_seconds=90) is None


def test_a_delivery_is_one_workers_until_its_lease_runs_out(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    run = queue.enqueue(owner, RunCreate(message="hi", webhook_url="https://example.com/h"))
    assert run.id is not None
    claim = queue.claim("w")
    assert claim is not None
    queue.finish(claim, RunStatus.SUCCEEDED, result={})
    assert queue.claim_delivery("first", lease_seconds=90) is not None

    assert queue.claim_delivery("second", lease_seconds=90) is None
    expire_lease(engine, run.id)  # the first worker died while it delivered
    taken_up = queue.claim_delivery("second", lease_seconds=90)

    assert taken_up is not None and taken_up.lease_owner == "second"


def test_finished_runs_are_purged_after_the_retention(
    queue: RunQueue, owner: int, engine: Engine
) -> None:
    old = queue.enqueue(owner, RunCreate(message="old"))
    recent = queue.enqueue(owner, RunCreate(message="recent"))
    for _ in range(2):
        claim = queue.claim("w")
        assert claim is not None
        queue.append(claim, AgentEventType.DELTA, {"text": "hi"})
        queue.finish(claim, RunStatus.SUCCEEDED, result={})
    with Session(engine) as session:
        session.execute(
            update(AgentRun)
            .where(col(AgentRun.id) == old.id)
            .values(finished_at=utc_now() - timedelta(days=31))
        )
        session.commit()

    removed = queue.purge(utc_now() - timedelta(days=30))

    assert removed == 1
    with Session(engine) as session:
        assert [r.id for r in session.exec(select(AgentRun))] == [recent.id]
        assert {e.run_id for e in session.exec(select(AgentRunEvent))} == {recent.id}
