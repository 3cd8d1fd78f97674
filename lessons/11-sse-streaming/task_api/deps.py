"""The dependencies routes ask for, each under a short name: `session: SessionDep`."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from task_api.config import Settings, get_settings
from task_api.database import get_session
from task_api.events import Subscription, TaskEventBroker, get_event_broker, parse_event_id
from task_api.models import User
from task_api.repository import SqlTaskRepository, TaskRepository
from task_api.security import read_user_id, unauthorized
from task_api.services import TaskService

# scope="function": the session closes when the route function returns, not when the
# response ends. An event stream may stay open for hours; it must not hold a connection.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]

# Reads "Authorization: Bearer <token>" and tells OpenAPI where to log in ("Authorize" in /docs).
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False)
TokenDep = Annotated[str | None, Depends(oauth2_scheme)]


def get_current_user(token: TokenDep, session: SessionDep, settings: SettingsDep) -> User:
    """The user the bearer token was issued to; 401 for anything else."""
    if token is None:
        raise unauthorized("Not authenticated")
    user_id = read_user_id(token, settings)
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise unauthorized("Could not validate credentials")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_task_repository(session: SessionDep) -> TaskRepository:
    """Where tasks are kept. Tests swap in another with app.dependency_overrides."""
    return SqlTaskRepository(session)


TaskRepositoryDep = Annotated[TaskRepository, Depends(get_task_repository)]


EventBrokerDep = Annotated[TaskEventBroker, Depends(get_event_broker)]


def get_task_service(
    repository: TaskRepositoryDep, user: CurrentUser, events: EventBrokerDep
) -> TaskService:
    """The caller's tasks, and the rules that go with them."""
    assert user.id is not None
    return TaskService(repository, owner_id=user.id, events=events)


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]


async def subscribe_to_task_events(
    user: CurrentUser,
    broker: EventBrokerDep,
    last_event_id: Annotated[str | None, Header()] = None,
) -> AsyncIterator[Subscription]:
    """Follow the caller's task events from before the stream starts until it ends.

    Subscribing here, before the response begins, means that no change made after the
    client sees the response start can slip past. The code after `yield` runs when the
    stream ends, also when the client goes away.
    """
    assert user.id is not None
    with broker.subscribe(user.id, parse_event_id(last_event_id)) as subscription:
        yield subscription


EventSubscriptionDep = Annotated[Subscription, Depends(subscribe_to_task_events)]
