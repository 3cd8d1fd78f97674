"""The dependencies routes ask for, each under a short name: `session: SessionDep`."""

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlmodel import Session

from task_api.config import Settings, get_settings
from task_api.database import get_session
from task_api.models import User
from task_api.repository import SqlTaskRepository, TaskRepository
from task_api.security import read_user_id, unauthorized
from task_api.services import TaskService

SessionDep = Annotated[Session, Depends(get_session)]
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


def get_task_service(repository: TaskRepositoryDep, user: CurrentUser) -> TaskService:
    """The caller's tasks, and the rules that go with them."""
    assert user.id is not None
    return TaskService(repository, owner_id=user.id)


TaskServiceDep = Annotated[TaskService, Depends(get_task_service)]
