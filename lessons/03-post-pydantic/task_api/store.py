"""Tasks kept in memory: they are gone when the app stops (lesson 07 brings a database)."""

from task_api.models import Task, TaskCreate


class TaskStore:
    """Holds tasks by id and hands out the ids."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}
        self.last_id = 0

    def list_tasks(self) -> list[Task]:
        return list(self.tasks.values())

    def get_task(self, task_id: int) -> Task | None:
        return self.tasks.get(task_id)

    def create_task(self, data: TaskCreate) -> Task:
        self.last_id += 1
        task = Task(id=self.last_id, **data.model_dump())
        self.tasks[task.id] = task
        return task


store = TaskStore()


def get_store() -> TaskStore:
    """The store a route works on; tests swap it for a fresh one."""
    return store
