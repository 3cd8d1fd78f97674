"""Where tasks are kept: the one module that talks to the database about tasks."""

from typing import Protocol

from sqlmodel import Session, select

from task_api.models import MAX_ID, Task, TaskPriority, TaskStatus


class TaskRepository(Protocol):
    """What the service needs from a store of tasks. Any class with these methods will do."""

    def list_tasks(
        self,
        owner_id: int,
        status: TaskStatus | None,
        priority: TaskPriority | None,
        limit: int,
        offset: int,
    ) -> list[Task]: ...

    def get_task(self, owner_id: int, task_id: int) -> Task | None: ...

    def open_titles(self, owner_id: int, exclude_id: int | None) -> list[str]: ...

    def save(self, task: Task) -> Task: ...

    def delete(self, task: Task) -> None: ...


class SqlTaskRepository:
    """Tasks in the SQL database, through this request's session."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def list_tasks(
        self,
        owner_id: int,
        status: TaskStatus | None,
        priority: TaskPriority | None,
        limit: int,
        offset: int,
    ) -> list[Task]:
        query = select(Task).where(Task.owner_id == owner_id)
        if status is not None:
            query = query.where(Task.status == status)
        if priority is not None:
            query = query.where(Task.priority == priority)
        # An offset past the largest id finds nothing; capping it keeps it a valid SQL integer.
        query = query.order_by(Task.id).offset(min(offset, MAX_ID)).limit(limit)  # type: ignore[arg-type]
        return list(self.session.exec(query).all())

    def get_task(self, owner_id: int, task_id: int) -> Task | None:
        task = self.session.get(Task, task_id) if 1 <= task_id <= MAX_ID else None
        return task if task is not None and task.owner_id == owner_id else None

    def open_titles(self, owner_id: int, exclude_id: int | None) -> list[str]:
        query = select(Task.title).where(
            Task.owner_id == owner_id, Task.status != TaskStatus.COMPLETED
        )
        if exclude_id is not None:
            query = query.where(Task.id != exclude_id)
        return list(self.session.exec(query).all())

    def save(self, task: Task) -> Task:
        self.session.add(task)
        self.session.commit()
        self.session.refresh(task)
        return task

    def delete(self, task: Task) -> None:
        self.session.delete(task)
        self.session.commit()
