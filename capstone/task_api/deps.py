"""The dependencies routes ask for, each under a short name: `session: SessionDep`.

Everything a request needs that lives longer than it (the settings, the engine, the agents,
the event broker, the run queue, the rate limits) was built by the app's lifespan and waits
on `app.state`. Those dependencies are `async def`: they only read `app.state`, and a plain
`def` would cost a trip to a worker thread for it.
"""

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from agents import Agent, ModelSettings
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import Engine
from sqlmodel import Session

from task_api.agents.pauses import ApprovalStore
from task_api.agents.tools import TaskContext
from task_api.agents.turns import Turn, start_turn
from task_api.config import Settings
from task_api.database import get_session
from task_api.errors import MissingScope, NotAuthenticated
from task_api.events import TaskEventBroker, parse_event_id
from task_api.memory import ConversationStore
from task_api.models import ChatRequest, Scope, User
from task_api.rate_limit import RateLimits
from task_api.repository import ApiKeyRepository, TaskRepository
from task_api.runs.models import AgentRun
from task_api.runs.queue import RunQueue
from task_api.runs.service import RunService
from task_api.security import read_user_id
from task_api.services import TaskService

# scope="function": the session closes when the route function returns, not when the
# response ends. An event stream may stay open for hours; it must not hold a connection.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_settings(connection: HTTPConnection) -> Settings:
    return connection.app.state.settings  # type: ignore[no-any-return]


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_rate_limits(connection: HTTPConnection) -> RateLimits:
    return connection.app.state.rate_limits  # type: ignore[no-any-return]


RateLimitsDep = Annotated[RateLimits, Depends(get_rate_limits)]

# People log in and send "Authorization: Bearer <token>"; programs send "X-API-Key: <key>".
# Both schemes show in /docs ("Authorize"); either one opens every protected route.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]
ApiKeyDep = Annotated[str | None, Depends(api_key_scheme)]


@dataclass(frozen=True)
class Caller:
    """Who is calling, and what they may do: a login may do everything, keys included; an
    API key only what its scopes say, and never manage keys."""

    user: User
    scopes: frozenset[Scope]
    by_key: bool


def authenticate(
    engine: Engine, settings: Settings, token: str | None, api_key: str | None
) -> Caller:
    """The user a bearer token was issued to, or whose API key this is; 401 for anything else.

    The one way credentials become a user, for every transport: a request, an event stream, a
    WebSocket (at connect, before each turn, and on a timer). Blocking (one query, on a
    session of its own, closed at once): call it in a thread.
    """
    if token is None and api_key is None:
        raise NotAuthenticated("Not authenticated")
    with Session(engine) as session:
        if token is not None:
            user_id, scopes = read_user_id(token, settings), frozenset(Scope)
        else:
            assert api_key is not None
            key = ApiKeyRepository(session).find(api_key)
            user_id = key.owner_id if key is not None else None
            scopes = frozenset(Scope(s) for s in key.scopes.split()) if key else frozenset()
        user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise NotAuthenticated("Could not validate credentials")
    return Caller(user, scopes, by_key=token is None)


async def get_caller(
    connection: HTTPConnection, token: TokenDep, api_key: ApiKeyDep, limits: RateLimitsDep
) -> Caller:
    """The caller, by the token or the key the request carries; the call counts against their
    rate limit. Every protected route depends on this, so every one of them is limited."""
    state = connection.app.state
    caller = await run_in_threadpool(authenticate, state.engine, state.settings, token, api_key)
    assert caller.user.id is not None
    await limits.hit_user(caller.user.id)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_current_user(caller: CallerDep) -> User:
    return caller.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def needs(reads: Scope, writes: Scope | None = None) -> Any:
    """A router's or route's scopes: an API key needs `reads` to GET, and `writes` (or
    `reads` again) for anything else; without it, 403. A login has every scope."""

    async def check_scope(request: Request, caller: CallerDep) -> None:
        needed = reads if request.method in ("GET", "HEAD") else writes or reads
        if needed not in caller.scopes:
            raise MissingScope.lacking(needed)

    return Depends(check_scope)


async def login_only(caller: CallerDep) -> None:
    """For what a leaked key must never do: make or revoke keys."""
    if caller.by_key:
        raise MissingScope("No API key makes or revokes keys: log in to do it")


# A connection that stays open asks again, this often, whether its credentials still hold.
CREDENTIALS_RECHECK_SECONDS = 30.0


@dataclass
class Credentials:
    """What a long-lived connection logged in with, to ask again later whether it holds."""

    engine: Engine
    settings: Settings
    token: str | None
    api_key: str | None
    checked_at: float = field(default_factory=time.monotonic)

    async def caller(self) -> Caller:
        """Who they name now (deps.authenticate); NotAuthenticated once they do not."""
        self.checked_at = time.monotonic()
        return await run_in_threadpool(
            authenticate, self.engine, self.settings, self.token, self.api_key
        )

    async def still_hold(self) -> bool:
        """Checked at most every CREDENTIALS_RECHECK_SECONDS: a revoked key or an expired
        token ends the stream that asks."""
        if time.monotonic() - self.checked_at < CREDENTIALS_RECHECK_SECONDS:
            return True
        try:
            await self.caller()
        except NotAuthenticated:
            return False
        return True


async def get_credentials(
    connection: HTTPConnection, token: TokenDep, api_key: ApiKeyDep
) -> Credentials:
    state = connection.app.state
    return Credentials(state.engine, state.settings, token, api_key)


CredentialsDep = Annotated[Credentials, Depends(get_credentials)]


async def hold_open(user: CurrentUser, limits: RateLimitsDep) -> AsyncIterator[None]:
    """For a route that stays open (a stream, a wait): counts against what the caller may
    hold open at once until its response ends; 429 past the limit, before it starts."""
    assert user.id is not None
    with limits.holding_open(user.id):
        yield


def client_address(request: Request) -> str:
    """The client's address: uvicorn takes it from X-Forwarded-For only behind a trusted proxy
    (--forwarded-allow-ips, lesson 09)."""
    return request.client.host if request.client else "unknown"


async def limit_logins(request: Request, limits: RateLimitsDep) -> None:
    await limits.hit(
        limits.settings.rate_limit_login, f"address:{client_address(request)}", "login"
    )


async def limit_registrations(request: Request, limits: RateLimitsDep) -> None:
    await limits.hit(
        limits.settings.rate_limit_register, f"address:{client_address(request)}", "register"
    )


async def get_task_repository(session: SessionDep) -> TaskRepository:
    """Where tasks are kept, through this request's session."""
    return TaskRepository(session)


TaskRepositoryDep = Annotated[TaskRepository, Depends(get_task_repository)]


async def get_event_broker(connection: HTTPConnection) -> TaskEventBroker:
    return connection.app.state.broker  # type: ignore[no-any-return]


EventBrokerDep = Annotated[TaskEventBroker, Depends(get_event_broker)]


async def get_task_service(
    repository: TaskRepositoryDep, user: CurrentUser, events: EventBrokerDep
) -> TaskService:
    """The caller's tasks, and the rules that go with them."""
    assert user.id is not None
    return TaskService(repository, owner_id=user.id, events=events)


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]


@dataclass
class TaskEventsStart:
    """Where a client's task stream begins: after the event it saw last, or after now."""

    owner_id: int
    after_id: int
    resync: bool  # it missed more than is kept: it should reload the list


async def start_task_events(
    user: CurrentUser,
    broker: EventBrokerDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> TaskEventsStart:
    """Found before the response begins: no change made after the client sees the
    response start can slip past."""
    assert user.id is not None
    oldest, newest = await run_in_threadpool(broker.id_range)
    seen = parse_event_id(last_event_id)
    if seen is None:
        return TaskEventsStart(user.id, newest, resync=False)
    if not oldest - 1 <= seen <= newest:  # purged since, or from before a reset
        return TaskEventsStart(user.id, newest, resync=True)
    return TaskEventsStart(user.id, seen, resync=False)


TaskEventsStartDep = Annotated[TaskEventsStart, Depends(start_task_events)]


async def get_conversations(user: CurrentUser, session: SessionDep) -> ConversationStore:
    """The caller's conversations with the agents."""
    assert user.id is not None
    return ConversationStore(session, owner_id=user.id)


ConversationsDep = Annotated[ConversationStore, Depends(get_conversations)]


async def get_agents(connection: HTTPConnection) -> Agent[TaskContext]:
    """The triage agent and its specialists, built at start-up on the app's model."""
    return connection.app.state.agents  # type: ignore[no-any-return]


AgentsDep = Annotated[Agent[TaskContext], Depends(get_agents)]


async def get_turn(data: ChatRequest, user: CurrentUser, broker: EventBrokerDep) -> Turn:
    """The turn the request asks for, its conversation loaded before the answer starts, so
    that a bad id is a plain 404. The turn holds no database connection while it runs."""
    assert user.id is not None
    model_settings = ModelSettings(temperature=data.temperature, max_tokens=data.max_output_tokens)
    return await run_in_threadpool(
        start_turn, broker.engine, broker, user.id, data.message, data.session_id, model_settings
    )


TurnDep = Annotated[Turn, Depends(get_turn)]


async def take_a_turn(connection: HTTPConnection) -> AsyncIterator[None]:
    """A place among the agent turns this process runs at once (admission.py), held until the
    response ends, a stream's included; 503 with Retry-After when none comes in time."""
    async with connection.app.state.admission.turn():
        yield


async def get_admitted_turn(turn: TurnDep, connection: HTTPConnection) -> AsyncIterator[Turn]:
    """The turn, once it has its place: found first, so a bad request never waits."""
    async with connection.app.state.admission.turn():
        yield turn


AdmittedTurnDep = Annotated[Turn, Depends(get_admitted_turn)]


async def get_run_queue(connection: HTTPConnection) -> RunQueue:
    return connection.app.state.run_queue  # type: ignore[no-any-return]


RunQueueDep = Annotated[RunQueue, Depends(get_run_queue)]


async def get_run_service(
    queue: RunQueueDep, user: CurrentUser, settings: SettingsDep
) -> RunService:
    """The caller's background runs, and the rules that go with them."""
    assert user.id is not None
    return RunService(queue, owner_id=user.id, settings=settings)


RunServiceDep = Annotated[RunService, Depends(get_run_service)]


async def find_run(run_id: int, runs: RunServiceDep) -> AgentRun:
    """The caller's run, found before a stream begins: someone else's is a plain 404."""
    return await run_in_threadpool(runs.get_run, run_id)


RunDep = Annotated[AgentRun, Depends(find_run)]


async def get_approvals(user: CurrentUser, queue: RunQueueDep) -> ApprovalStore:
    """The caller's approvals: the tool calls that wait for their decision."""
    assert user.id is not None
    return ApprovalStore(queue.engine, queue.notifier, owner_id=user.id)


ApprovalsDep = Annotated[ApprovalStore, Depends(get_approvals)]
