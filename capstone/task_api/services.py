"""The rules of the task list, whatever keeps the tasks."""

from task_api.errors import DuplicateTask, EmptyUpdate, TaskNotFound
from task_api.events import TaskEventBroker, TaskEventType
from task_api.models import Task, TaskCreate, TaskPriority, TaskStatus, TaskUpdate, utc_now
from task_api.repository import TaskRepository


class TaskService:
    """One user's tasks: the routes call it, and so will the agent's tools."""

    def __init__(self, repository: TaskRepository, owner_id: int, events: TaskEventBroker) -> None:
        self.repository = repository
        # Every call below is limited to this user's tasks.
        self.owner_id = owner_id
        self.events = events

    def list_tasks(
        self,
        status: TaskStatus | None = None,
        priority: TaskPriority | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        return self.repository.list_tasks(self.owner_id, status, priority, limit, offset)

    def get_task(self, task_id: int) -> Task:
        # Someone else's task is "not found" too: a 403 would confirm that it exists.
        task = self.repository.get_task(self.owner_id, task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def create_task(self, data: TaskCreate) -> Task:
        # One change of this user's tasks at a time, from here until it is saved.
        self.repository.lock_owner(self.owner_id)
        self.check_title_is_free(data.title, data.status)
        task = Task.model_validate(data, update={"owner_id": self.owner_id})
        return self.announced(self.repository.save(task, TaskEventType.CREATED))

    def replace_task(self, task_id: int, data: TaskCreate) -> Task:
        self.repository.lock_owner(self.owner_id)
        task = self.get_task(task_id)
        self.check_title_is_free(data.title, data.status, task_id)
        task.sqlmodel_update({**data.model_dump(), "updated_at": utc_now()})
        return self.announced(self.repository.save(task, TaskEventType.UPDATED))

    def update_task(self, task_id: int, data: TaskUpdate) -> Task:
        self.repository.lock_owner(self.owner_id)
        task = self.get_task(task_id)
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise EmptyUpdate()
        # Only the fields the client sent: a PATCH leaves the others alone.
        title, status = changes.get("title", task.title), changes.get("status", task.status)
        self.check_title_is_free(title, status, task_id)
        task.sqlmodel_update({**changes, "updated_at": utc_now()})
        return self.announced(self.repository.save(task, TaskEventType.UPDATED))

    def delete_task(self, task_id: int) -> None:
        self.repository.lock_owner(self.owner_id)
        self.repository.delete(self.get_task(task_id))
        self.events.wake(self.owner_id)

    def check_title_is_free(
        self, title: str, status: TaskStatus, task_id: int | None = None
    ) -> None:
        """Two open tasks with the same title are almost always a mistake: refuse the second."""
        if status == TaskStatus.COMPLETED:
            return
        # Compared here rather than in SQL, so that case folding is the same everywhere.
        titles = self.repository.open_titles(self.owner_id, exclude_id=task_id)
        if any(other.casefold() == title.casefold() for other in titles):
            raise DuplicateTask(title)

    def announced(self, task: Task) -> Task:
        """The saved task, once the owner's open event streams are woken to read its event."""
        self.events.wake(self.owner_id)
        return task
