"""The shapes of the data: what the API reads and writes, and the table it is stored in."""

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, field_validator
from sqlmodel import Field, SQLModel


class TaskStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


class TaskPriority(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


def reject_nul(value: str) -> str:
    # PostgreSQL text cannot hold a NUL character: refuse it here, as a 422, not in the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(reject_nul),
]
Description = Annotated[str, StringConstraints(max_length=2000), AfterValidator(reject_nul)]


def enum_column(enum: type[StrEnum]) -> sa.Enum:
    """Store an enum by its value ("in_progress"), as the API shows it, in a plain VARCHAR."""
    return sa.Enum(
        enum, values_callable=lambda members: [m.value for m in members], native_enum=False
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


# The largest id an INTEGER column holds; a bigger one cannot name a row.
MAX_ID = 2**31 - 1


class TaskBase(SQLModel):
    """The fields a client may set."""

    title: Title = Field(max_length=200, schema_extra={"examples": ["Buy milk"]})
    description: Description | None = Field(default=None, max_length=2000)
    status: TaskStatus = Field(default=TaskStatus.PENDING, sa_type=enum_column(TaskStatus))
    priority: TaskPriority = Field(default=TaskPriority.MEDIUM, sa_type=enum_column(TaskPriority))
    due_date: date | None = Field(default=None, schema_extra={"examples": ["2026-12-01"]})


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

    detail: str = Field(schema_extra={"examples": ["Task 42 not found"]})


def as_json_errors(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """The same error responses, documented as JSON bodies on a route that streams.

    FastAPI documents an error's `model` in the route's own media type, `text/event-stream`
    for a stream; but a stream's errors come before it starts, as plain JSON.
    """
    schema = {"$ref": "#/components/schemas/ErrorMessage"}
    return {
        status: {
            "description": response["description"],
            "content": {"application/json": {"schema": schema}},
        }
        for status, response in responses.items()
    }


class Task(TaskBase, table=True):
    """A task as stored in the database: the table `task`."""

    # SQLite would hand a deleted task's id to the next new one: AUTOINCREMENT never reuses ids.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    # Whose task it is. Not in TaskPublic: clients never see or set it.
    owner_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True))


class TaskPublic(TaskBase):
    """A stored task: what the API returns."""

    id: int
    created_at: datetime
    updated_at: datetime

    @field_validator("created_at", "updated_at")
    @classmethod
    def in_utc(cls, value: datetime) -> datetime:
        # SQLite hands datetimes back without their time zone; they were stored in UTC.
        return value if value.tzinfo else value.replace(tzinfo=UTC)


Username = Annotated[
    str, StringConstraints(min_length=3, max_length=50, pattern=r"^[a-zA-Z0-9_.-]+$")
]
Password = Annotated[
    str, StringConstraints(min_length=8, max_length=128), AfterValidator(reject_nul)
]


class UserBase(SQLModel):
    username: Username = Field(max_length=50, schema_extra={"examples": ["alice"]})


class UserCreate(UserBase):
    """What a client sends to register."""

    model_config = ConfigDict(extra="forbid")

    password: Password = Field(schema_extra={"examples": ["correct horse battery staple"]})


class User(UserBase, table=True):
    """A user as stored in the database: the password only as a hash."""

    # Never reuse a deleted user's id: a token issued to them must not open a newer account.
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=50, unique=True, index=True)
    hashed_password: str
    created_at: datetime = Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True))


class UserPublic(UserBase):
    """A user as the API shows it: never with a password or its hash."""

    id: int
    created_at: datetime

    @field_validator("created_at")
    @classmethod
    def in_utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Token(SQLModel):
    """The answer to a successful login (RFC 6749, section 5.1)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")


class ChatRequest(SQLModel):
    """A message to the agent."""

    model_config = ConfigDict(extra="forbid")

    message: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000)
    ] = Field(schema_extra={"examples": ["Add a task to buy milk, due friday"]})


class ToolCall(SQLModel):
    """One tool the agent called, with what it sent and what it got back."""

    name: str
    arguments: dict[str, Any]
    output: str


class ChatUsage(SQLModel):
    requests: int
    input_tokens: int
    output_tokens: int


class ChatReply(SQLModel):
    """The agent's answer, and the tool calls that led to it."""

    reply: str
    tool_calls: list[ToolCall]
    usage: ChatUsage
    model: str


SESSION_ID = r"^[A-Za-z0-9_-]{1,64}$"
SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID)]


class ChatStreamRequest(ChatRequest):
    """A message to the agent, in a conversation it remembers."""

    session_id: SessionId | None = Field(
        default=None,
        description="Continue the conversation this id (from a `done` event) names; "
        "leave it out to start a new one.",
    )


class AgentSession(SQLModel, table=True):
    """A conversation with the agent: whose it is. Its turns are in AgentTurn."""

    __tablename__ = "agent_session"

    id: str = Field(primary_key=True, max_length=64)
    owner_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True))


class AgentTurn(SQLModel, table=True):
    """One complete turn: the user's message and everything the run added, as model input."""

    __tablename__ = "agent_turn"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="agent_session.id", index=True, ondelete="CASCADE")
    items: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    created_at: datetime = Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True))


class SessionMessage(SQLModel):
    role: str = Field(description="user or assistant")
    content: str


class AgentSessionPublic(SQLModel):
    session_id: str
    messages: list[SessionMessage]
    created_at: datetime
    updated_at: datetime

    @field_validator("created_at", "updated_at")
    @classmethod
    def in_utc(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)
