"""Tasks kept in memory: they are gone when the app stops (lesson 07 brings a database)."""

from task_api.models import Task, TaskCreate, TaskPriority, TaskStatus, TaskUpdate


class TaskStore:
    """Holds tasks by id and hands out the ids."""

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

    def get_task(self, task_id: int) -> Task | None:
        return self.tasks.get(task_id)

    def create_task(self, data: TaskCreate) -> Task:
        self.last_id += 1
        task = Task(id=self.last_id, **data.model_dump())
        self.tasks[task.id] = task
        return task

    def replace_task(self, task_id: int, data: TaskCreate) -> Task | None:
        if task_id not in self.tasks:
            return None
        task = Task(id=task_id, **data.model_dump())
        self.tasks[task_id] = task
        return task

    def update_task(self, task_id: int, data: TaskUpdate) -> Task | None:
        task = self.tasks.get(task_id)
        if task is None:
            return None
        # Only the fields the client sent: a PATCH leaves the others alone.
        task = task.model_copy(update=data.model_dump(exclude_unset=True))
        self.tasks[task_id] = task
        return task

    def delete_task(self, task_id: int) -> bool:
        return self.tasks.pop(task_id, None) is not None


store = TaskStore()


def get_store() -> TaskStore:
    """The store a route works on; tests swap it for a fresh one."""
    return store
