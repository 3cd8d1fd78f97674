"""Where tasks and API keys are kept: the module that talks to the database about them."""

from sqlmodel import Session, col, select

from task_api.events import TaskEventType
from task_api.models import (
    MAX_ID,
    ApiKey,
    Task,
    TaskEvent,
    TaskPriority,
    TaskPublic,
    TaskStatus,
    User,
)
from task_api.security import api_key_matches, api_key_prefix, looks_like_an_api_key


class TaskRepository:
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

    def lock_owner(self, owner_id: int) -> None:
        """Make the owner's other changes wait until this transaction ends.

        One change at a time per owner keeps two rules when requests and tool calls come at
        once: no two open tasks share a title, and the owner's events are committed in the
        order of their ids, so a stream that asks for the ids after the last it saw misses
        none. On PostgreSQL the owner's row is locked (FOR NO KEY UPDATE: rows that merely
        refer to it are not held up). SQLite has no row locks, and needs none for the
        events: it lets one writer in at a time.
        """
        if self.session.get_bind().dialect.name != "postgresql":
            return
        query = select(User.id).where(User.id == owner_id).with_for_update(key_share=True)
        self.session.exec(query)

    # A change and the event that tells of it commit together, in one transaction: a live
    # stream never misses a saved change, nor hears of one that was not saved.
    def save(self, task: Task, event: TaskEventType) -> Task:
        self.session.add(task)
        self.session.flush()  # a new task gets its id here, before the event is written
        data = TaskPublic.model_validate(task).model_dump(mode="json")
        self.session.add(TaskEvent(owner_id=task.owner_id, type=event, data=data))
        self.session.commit()
        return task

    def delete(self, task: Task) -> None:
        self.session.delete(task)
        self.session.add(
            TaskEvent(owner_id=task.owner_id, type=TaskEventType.DELETED, data={"id": task.id})
        )
        self.session.commit()


class ApiKeyRepository:
    """API keys in the SQL database. Another user's key is "not found", like a task."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, key: str) -> ApiKey | None:
        """The stored key (whose it is, what it may do), or None for one that does not exist
        (any more)."""
        if not looks_like_an_api_key(key):
            return None
        stored = self.session.exec(
            select(ApiKey).where(ApiKey.prefix == api_key_prefix(key))
        ).first()
        if stored is None or not api_key_matches(key, stored.hashed_key):
            return None
        return stored

    def list_keys(self, owner_id: int) -> list[ApiKey]:
        query = select(ApiKey).where(ApiKey.owner_id == owner_id).order_by(col(ApiKey.id))
        return list(self.session.exec(query).all())

    def get(self, owner_id: int, key_id: int) -> ApiKey | None:
        key = self.session.get(ApiKey, key_id) if 1 <= key_id <= MAX_ID else None
        return key if key is not None and key.owner_id == owner_id else None

    def save(self, key: ApiKey) -> ApiKey:
        self.session.add(key)
        self.session.commit()
        self.session.refresh(key)
        return key

    def delete(self, key: ApiKey) -> None:
        self.session.delete(key)
        self.session.commit()
