"""Tasks kept in memory: they are gone when the app stops (lesson 07 brings a database)."""

from task_api.errors import DuplicateTask, EmptyUpdate, TaskNotFound
from task_api.models import Task, TaskCreate, TaskPriority, TaskStatus, TaskUpdate


class TaskStore:
    """Holds tasks by id, hands out the ids and keeps the rules of the task list."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.last_id = 0

    def list_tasks(
        self,
        status: TaskStatus | None = None,
        priority: TaskPriority | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        tasks = [
            task
            for task in self.tasks.values()
            if (status is None or task.status == status)
            and (priority is None or task.priority == priority)
        ]
        return tasks[offset : offset + limit]

    def get_task(self, task_id: int) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise TaskNotFound(task_id)
        return task

    def create_task(self, data: TaskCreate) -> Task:
        task = Task(id=self.last_id + 1, **data.model_dump())
        self.check_title_is_free(task)
        self.last_id += 1
        self.tasks[task.id] = task
        return task

    def replace_task(self, task_id: int, data: TaskCreate) -> Task:
        self.get_task(task_id)
        task = Task(id=task_id, **data.model_dump())
        self.check_title_is_free(task)
        self.tasks[task_id] = task
        return task

    def update_task(self, task_id: int, data: TaskUpdate) -> Task:
        task = self.get_task(task_id)
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            raise EmptyUpdate()
        # Only the fields the client sent: a PATCH leaves the others alone.
        task = task.model_copy(update=changes)
        self.check_title_is_free(task)
        self.tasks[task_id] = task
        return task

    def delete_task(self, task_id: int) -> None:
        self.get_task(task_id)
        del self.tasks[task_id]

    def check_title_is_free(self, task: Task) -> None:
        """Two open tasks with the same title are almost always a mistake: refuse the second."""
        if task.status == TaskStatus.COMPLETED:
            return
        for other in self.tasks.values():
            if (
                other.id != task.id
                and other.status != TaskStatus.COMPLETED
                and other.title.casefold() == task.title.casefold()
            ):
                raise DuplicateTask(task.title)


store = TaskStore()


def get_store() -> TaskStore:
    """The store a route works on; tests swap it for a fresh one."""
    return store
