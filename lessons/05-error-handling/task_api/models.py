"""The shapes of the data the API reads and writes."""

from datetime import date
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=2000)]


class TaskBase(BaseModel):
    """The fields a client may set."""

    title: Title = Field(examples=["Buy milk"])
    description: Description | None = None
    status: TaskStatus = TaskStatus.PENDING
    priority: TaskPriority = TaskPriority.MEDIUM
    due_date: date | None = Field(default=None, examples=["2026-12-01"])


class TaskCreate(TaskBase):
    """What a client sends to create a task."""

    # A misspelt field ("titel") is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid")


# Fields a PATCH may leave out but not set to null: every task has them.
NOT_NULL = ("title", "status", "priority")


def not_null_in_schema(schema: dict[str, Any]) -> None:
    """The API document says what TaskUpdate.reject_null enforces: these are never null."""
    for name in NOT_NULL:
        field = schema["properties"][name]
        field.update(next(option for option in field.pop("anyOf") if option != {"type": "null"}))


class TaskUpdate(BaseModel):
    """What a client sends to change some fields of a task; the others stay as they are."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=not_null_in_schema)

    title: Title | None = None
    description: Description | None = None
    status: TaskStatus | None = None
    priority: TaskPriority | None = None
    due_date: date | None = None

    @field_validator(*NOT_NULL)
    @classmethod
    def reject_null(cls, value: Any) -> Any:
        # Leaving a field out keeps it; sending null would blank a field every task must have.
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class ErrorMessage(BaseModel):
    """The body of every error the API answers on purpose."""

    detail: str = Field(examples=["Task 42 not found"])


class Task(TaskBase):
    """A stored task: what the API returns."""

    id: int
