"""Tasks kept in memory: they are gone when the app stops (lesson 07 brings a database)."""

from typing import Any

Task = dict[str, Any]

SAMPLE_TASKS: list[Task] = [
    {
        "id": 1,
        "title": "Read the FastAPI tutorial",
        "description": "The first steps, up to path parameters.",
        "status": "completed",
        "priority": "medium",
        "due_date": None,
    },
    {
        "id": 2,
        "title": "Write a first test",
        "description": None,
        "status": "in_progress",
        "priority": "high",
        "due_date": "2026-12-01",
    },
]


class TaskStore:
    """Holds tasks by id."""

    def __init__(self, tasks: list[Task]) -> None:
        self.tasks: dict[int, Task] = {task["id"]: task for task in tasks}

    def list_tasks(self) -> list[Task]:
        return list(self.tasks.values())

    def get_task(self, task_id: int) -> Task | None:
        return self.tasks.get(task_id)


store = TaskStore(SAMPLE_TASKS)


def get_store() -> TaskStore:
    """The store a route works on; tests swap it for a fresh one."""
    return store
