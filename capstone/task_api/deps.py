"""The dependencies routes ask for, each under a short name: `session: SessionDep`.

Everything a request needs that lives longer than it (the settings, the engine, the model,
the event broker, the rate limits) was built by the app's lifespan and waits on `app.state`.
"""

from typing import Annotated

from agents import Model
from fastapi import Depends, Request
from fastapi.requests import HTTPConnection
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlmodel import Session

from task_api.config import Settings
from task_api.database import get_session
from task_api.errors import NotAuthenticated
from task_api.events import TaskEventBroker
from task_api.models import User
from task_api.rate_limit import RateLimits
from task_api.repository import ApiKeyRepository, SqlTaskRepository, TaskRepository
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


def authenticate(
    session: Session, settings: Settings, token: str | None, api_key: str | None
) -> User:
    """The user a bearer token was issued to, or whose API key this is; 401 for anything else."""
    if token is None and api_key is None:
        raise NotAuthenticated("Not authenticated")
    if token is not None:
        user_id = read_user_id(token, settings)
    else:
        assert api_key is not None
        user_id = ApiKeyRepository(session).owner_of(api_key)
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise NotAuthenticated("Could not validate credentials")
    return user


def get_current_user(
    token: TokenDep, api_key: ApiKeyDep, session: SessionDep, settings: SettingsDep
) -> User:
    """The caller, by the token or the key the request carries."""
    user = authenticate(session, settings, token, api_key)
    # Give the connection back to the pool now; the user stays readable. A chat then waits
    # seconds for the model, and a connection held by every waiting chat would drain the pool.
    session.close()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


async def limit_api_calls(user: CurrentUser, limits: RateLimitsDep) -> None:
    """Count this call against the caller's limit: per user, from whatever address."""
    await limits.hit(limits.settings.rate_limit_api, f"user:{user.id}", "api")


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
    """Where tasks are kept. Tests swap in another with app.dependency_overrides."""
    return SqlTaskRepository(session)


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


async def get_agent_model(connection: HTTPConnection) -> Model:
    """The model the app opened at start-up (see main.lifespan); tests may swap in theirs."""
    return connection.app.state.agent_model  # type: ignore[no-any-return]


AgentModelDep = Annotated[Model, Depends(get_agent_model)]
