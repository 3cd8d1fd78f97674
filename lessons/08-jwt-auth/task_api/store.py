"""Tasks kept in the database, each user's apart."""

from typing import Annotated

from fastapi import Depends
from sqlmodel import Session, select

from task_api.database import get_session
from task_api.errors import DuplicateTask, EmptyUpdate, TaskNotFound
from task_api.models import (
    MAX_ID,
    Task,
    TaskCreate,
    TaskPriority,
    TaskStatus,
    TaskUpdate,
    User,
    utc_now,
)
from task_api.security import get_current_user


class TaskStore:
    """Reads and writes one user's tasks, and keeps the rules of the task list."""

    def __init__(self, session: Session, owner_id: int) -> None:
        self.session = session
        # Every query below is limited to this user's tasks.
        self.owner_id = owner_id

    def list_tasks(
        self,
        status: TaskStatus | None = None,
        priority: TaskPriority | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        query = select(Task).where(Task.owner_id == self.owner_id)
        if status is not None:
            query = query.where(Task.status == status)
        if priority is not None:
            query = query.where(Task.priority == priority)
        # An offset past the largest id finds nothing; capping it keeps it a valid SQL integer.
        query = query.order_by(Task.id).offset(min(offset, MAX_ID)).limit(limit)  # type: ignore[arg-type]
        return list(self.session.exec(query).all())

    def get_task(self, task_id: int) -> Task:
        task = self.session.get(Task, task_id) if 1 <= task_id <= MAX_ID else None
        # Someone else's task is "not found" too: a 403 would confirm that it exists.
        if task is None or task.owner_id != self.owner_id:
            raise TaskNotFound(task_id)
        return task

    def create_task(self, data: TaskCreate) -> Task:
        task = Task.model_validate(data, update={"owner_id": self.owner_id})
        self.check_title_is_free(task)
        return self.save(task)

    def replace_task(self, task_id: int, data: TaskCreate) -> Task:
        task = self.get_task(task_id)
        task.sqlmodel_update({**data.model_dump(), "updated_at": utc_now()})
        self.check_title_is_free(task)
        return self.save(task)

    def update_task(self, task_id: int, data: TaskUpdate) -> Task:
        task = self.get_task(task_id)
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise EmptyUpdate()
        # Only the fields the client sent: a PATCH leaves the others alone.
        task.sqlmodel_update({**changes, "updated_at": utc_now()})
        self.check_title_is_free(task)
        return self.save(task)

    def delete_task(self, task_id: int) -> None:
        self.session.delete(self.get_task(task_id))
        self.session.commit()

    def check_title_is_free(self, task: Task) -> None:
        """Two open tasks with the same title are almost always a mistake: refuse the second."""
        if task.status == TaskStatus.COMPLETED:
            return
        query = select(Task.title).where(
            Task.owner_id == self.owner_id, Task.status != TaskStatus.COMPLETED
        )
        if task.id is not None:
            query = query.where(Task.id != task.id)
        # Compared here rather than in SQL, so that case folding is the same on every database.
        with self.session.no_autoflush:
            titles = self.session.exec(query).all()
        if any(title.casefold() == task.title.casefold() for title in titles):
            raise DuplicateTask(task.title)

    def save(self, task: Task) -> Task:
        self.session.add(task)
        self.session.commit()
        self.session.refresh(task)
        return task


def get_store(
    session: Annotated[Session, Depends(get_session)],
    user: Annotated[User, Depends(get_current_user)],
) -> TaskStore:
    """The store a route works on: the caller's tasks, with this request's database session."""
    assert user.id is not None
    return TaskStore(session, owner_id=user.id)
