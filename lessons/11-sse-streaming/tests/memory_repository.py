"""A TaskRepository that keeps tasks in a dict: the service cannot tell the difference."""

from task_api.models import Task, TaskPriority, TaskStatus


class InMemoryTaskRepository:
    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}

    def list_tasks(
        self,
        owner_id: int,
        status: TaskStatus | None,
        priority: TaskPriority | None,
        limit: int,
        offset: int,
    ) -> list[Task]:
        tasks = [
            task
            for task in self.tasks.values()
            if task.owner_id == owner_id
            and (status is None or task.status == status)
            and (priority is None or task.priority == priority)
        ]
        return tasks[offset : offset + limit]

    def get_task(self, owner_id: int, task_id: int) -> Task | None:
        task = self.tasks.get(task_id)
        return task if task is not None and task.owner_id == owner_id else None

    def open_titles(self, owner_id: int, exclude_id: int | None) -> list[str]:
        return [
            task.title
            for task in self.tasks.values()
            if task.owner_id == owner_id
            and task.status != TaskStatus.COMPLETED
            and task.id != exclude_id
        ]

    def save(self, task: Task) -> Task:
        if task.id is None:
            task.id = max(self.tasks, default=0) + 1
        self.tasks[task.id] = task
        return task

    def delete(self, task: Task) -> None:
        assert task.id is not None
        del self.tasks[task.id]
