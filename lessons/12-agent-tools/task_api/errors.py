"""What can go wrong with a request: a reason the client can fix, or a model that failed."""


class TaskError(Exception):
    """A request broke a rule of the task list. Subclasses say which rule, and the status."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class TaskNotFound(TaskError):
    status_code = 404

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} not found")


class DuplicateTask(TaskError):
    status_code = 409

    def __init__(self, title: str) -> None:
        super().__init__(f"An open task is already titled {title!r}")


class EmptyUpdate(TaskError):
    status_code = 400

    def __init__(self) -> None:
        super().__init__("Send at least one field to change")


class UsernameTaken(TaskError):
    status_code = 409

    def __init__(self, username: str) -> None:
        super().__init__(f"The username {username!r} is taken")


class AgentRunFailed(TaskError):
    """The agent could not finish: its model failed (502) or took too long (504)."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
