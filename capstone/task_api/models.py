"""The shapes of the data: what the API reads and writes, and the tables they are stored in."""

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

import sqlalchemy as sa
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)
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


def in_utc(value: datetime) -> datetime:
    # SQLite hands datetimes back without their time zone; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


UtcDateTime = Annotated[datetime, AfterValidator(in_utc)]


def timestamp() -> Any:
    """A column for a moment in time, set when the row is made."""
    return Field(default_factory=utc_now, sa_type=sa.DateTime(timezone=True))


# The largest id an INTEGER column holds; a bigger one cannot name a row.
MAX_ID = 2**31 - 1
# Tables that hand out ids never reuse a deleted row's (SQLite would, without AUTOINCREMENT).
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}


class TaskBase(SQLModel):
    """The fields a client may set."""

    title: Title = Field(max_length=200, schema_extra={"examples": ["Buy milk"]})
    description: Description | None = Field(default=None, max_length=2000)
    status: TaskStatus = Field(default=TaskStatus.PENDING, sa_type=enum_column(TaskStatus))
    priority: TaskPriority = Field(default=TaskPriority.MEDIUM, sa_type=enum_column(TaskPriority))
    due_date: date | None = Field(default=None, schema_extra={"examples": ["2026-12-01"]})


# No body this API reads has more fields than this.
MAX_BODY_FIELDS = 20


class RequestBody(BaseModel):
    """A body a client sends. A misspelt field ("titel") is an error, not silently ignored;
    and a body of thousands of fields is refused at once, with one error, not thousands."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def at_most_a_few_fields(cls, data: Any) -> Any:
        if isinstance(data, dict) and len(data) > MAX_BODY_FIELDS:
            raise ValueError(f"A body has at most {MAX_BODY_FIELDS} fields")
        return data


class TaskCreate(TaskBase, RequestBody):
    """What a client sends to create a task."""


# Fields a PATCH may leave out but not set to null: every task has them.
NOT_NULL = ("title", "status", "priority")


def not_null_in_schema(schema: dict[str, Any]) -> None:
    """The API document says what TaskUpdate.reject_null enforces: these are never null."""
    for name in NOT_NULL:
        field = schema["properties"][name]
        field.update(next(option for option in field.pop("anyOf") if option != {"type": "null"}))


class TaskUpdate(RequestBody):
    """What a client sends to change some fields of a task; the others stay as they are."""

    model_config = ConfigDict(json_schema_extra=not_null_in_schema)

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


class Task(TaskBase, table=True):
    """A task as stored in the database: the table `task`."""

    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    # Whose task it is. Not in TaskPublic: clients never see or set it.
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    created_at: datetime = timestamp()
    updated_at: datetime = timestamp()


class TaskPublic(TaskBase):
    """A stored task: what the API returns."""

    id: int
    created_at: UtcDateTime
    updated_at: UtcDateTime


Username = Annotated[
    str, StringConstraints(min_length=3, max_length=50, pattern=r"^[a-zA-Z0-9_.-]+$")
]
Password = Annotated[
    str, StringConstraints(min_length=8, max_length=128), AfterValidator(reject_nul)
]


class UserBase(SQLModel):
    username: Username = Field(max_length=50, schema_extra={"examples": ["alice"]})


class UserCreate(UserBase, RequestBody):
    """What a client sends to register."""

    password: Password = Field(schema_extra={"examples": ["correct horse battery staple"]})


class User(UserBase, table=True):
    """A user as stored in the database: the password only as a hash."""

    # Never reuse a deleted user's id: a token issued to them must not open a newer account.
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=50, unique=True, index=True)
    hashed_password: str
    created_at: datetime = timestamp()


class UserPublic(UserBase):
    """A user as the API shows it: never with a password or its hash."""

    id: int
    created_at: UtcDateTime


class Token(BaseModel):
    """The answer to a successful login (RFC 6749, section 5.1)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the token expires")


KeyName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(reject_nul),
]


class Scope(StrEnum):
    """What an API key may do. None of them manages keys: only a login does."""

    READ = "read"  # read tasks, the user, conversations, runs
    WRITE = "write"  # create, change and delete tasks and conversations
    AGENT = "agent"  # chat with the agents, start and cancel runs


class ApiKeyCreate(RequestBody):
    """What a client sends to make an API key: a name, to know later what it is for, and
    what it may do (give it no more than the program needs)."""

    name: KeyName = Field(schema_extra={"examples": ["nightly report script"]})
    scopes: list[Scope] = Field(
        default=[Scope.READ, Scope.WRITE, Scope.AGENT],
        min_length=1,
        max_length=len(Scope),
        schema_extra={"examples": [["read"]]},
    )


class ApiKey(SQLModel, table=True):
    """A key for a program, stored as its prefix (to find it) and a hash (to check it)."""

    __tablename__ = "api_key"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, unique=True, index=True)
    hashed_key: str = Field(max_length=64)
    scopes: str = Field(max_length=100)  # "read write", as OAuth 2 writes scopes
    created_at: datetime = timestamp()


class ApiKeyPublic(BaseModel):
    """An API key as listed: never the key itself, which only its owner saw, once."""

    id: int
    name: str
    prefix: str = Field(description="The start of the key, to tell keys apart")
    scopes: list[Scope]
    created_at: UtcDateTime


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The key: shown this once, never again. Send it as X-API-Key.")


class Conversation(SQLModel, table=True):
    """A conversation with the agents: whose it is, and its title. Its turns are apart."""

    id: str = Field(primary_key=True, max_length=64)
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    title: str = Field(max_length=100)
    created_at: datetime = timestamp()
    updated_at: datetime = Field(
        default_factory=utc_now, sa_type=sa.DateTime(timezone=True), index=True
    )


class ConversationTurn(SQLModel, table=True):
    """One complete turn: the user's message and everything the run added, as model input."""

    __tablename__ = "conversation_turn"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(
        foreign_key="conversation.id", max_length=64, index=True, ondelete="CASCADE"
    )
    items: list[dict[str, Any]] = Field(sa_type=sa.JSON)
    created_at: datetime = timestamp()


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"  # not decided in time: rejected by itself


class PausedTurn(SQLModel, table=True):
    """A turn that waits for its owner to approve or reject a tool call: the SDK's RunState,
    and what the turn needs to go on from it, in any process, after any restart."""

    __tablename__ = "paused_turn"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    conversation_id: str = Field(max_length=64)
    new_conversation: bool
    message: str
    history_length: int  # the conversation's items before this turn, in the state's input
    temperature: float | None = None
    max_output_tokens: int | None = None
    # Set for a background run's turn: the run waits in `awaiting_approval`.
    run_id: int | None = Field(
        default=None, foreign_key="agent_run.id", index=True, ondelete="CASCADE"
    )
    # None (SQL NULL, not JSON null) once the turn went on to its end.
    state: dict[str, Any] | None = Field(default=None, sa_type=sa.JSON(none_as_null=True))
    agents_version: str = Field(max_length=64)  # the agents that paused it (agents_version)
    expires_at: datetime = Field(sa_type=sa.DateTime(timezone=True), index=True)
    # When a decision (or the expiry) took it to go on: a pause is taken once.
    taken_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    created_at: datetime = timestamp()


class Approval(SQLModel, table=True):
    """One tool call of a paused turn that waits for its owner's yes or no."""

    id: str = Field(primary_key=True, max_length=32)  # unguessable, as conversations' ids
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    paused_turn_id: int = Field(foreign_key="paused_turn.id", index=True, ondelete="CASCADE")
    call_id: str = Field(max_length=200)
    tool: str = Field(max_length=100)
    arguments: dict[str, Any] = Field(sa_type=sa.JSON)
    agent: str = Field(max_length=100)
    status: ApprovalStatus = Field(
        default=ApprovalStatus.PENDING, sa_type=enum_column(ApprovalStatus)
    )
    reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = timestamp()
    decided_at: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))


ConversationTitle = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(reject_nul),
]


class ConversationPublic(BaseModel):
    id: str
    title: str
    created_at: UtcDateTime
    updated_at: UtcDateTime


class Message(BaseModel):
    role: str = Field(description="user or assistant")
    content: str


class ConversationWithMessages(ConversationPublic):
    messages: list[Message]


class ConversationRename(RequestBody):
    title: ConversationTitle


Prompt = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(reject_nul),
]
CONVERSATION_ID = r"^[A-Za-z0-9_-]{1,64}$"
ConversationId = Annotated[str, StringConstraints(pattern=CONVERSATION_ID)]


class ChatRequest(RequestBody):
    """A message to the agents, in a conversation they remember."""

    message: Prompt = Field(schema_extra={"examples": ["Add a task to buy milk, due friday"]})
    session_id: ConversationId | None = Field(
        default=None,
        description="Continue the conversation this id (from an earlier reply) names; "
        "leave it out to start a new one.",
    )
    temperature: float | None = Field(default=None, ge=0, le=2, description="Passed to the model")
    max_output_tokens: int | None = Field(
        default=None, ge=1, le=4000, description="The most tokens each model call may write"
    )


class ToolCall(BaseModel):
    """One tool the agent called, with what it sent and what it got back."""

    name: str
    arguments: dict[str, Any]
    output: str


class Usage(BaseModel):
    requests: int
    input_tokens: int
    output_tokens: int


class ChatReply(BaseModel):
    """The agents' answer, the tool calls that led to it, and what it cost."""

    reply: str
    session_id: str
    agent: str = Field(description="The agent that answered, after any handoffs")
    tool_calls: list[ToolCall]
    usage: Usage
    model: str
    duration_ms: int


class PendingApproval(BaseModel):
    """A tool call the agents proposed, waiting for your yes or no."""

    id: str = Field(description="Decide it with POST /api/v1/approvals/{id}")
    tool: str
    arguments: dict[str, Any]
    agent: str = Field(description="The agent that proposed it")


class ChatPaused(BaseModel):
    """The turn waits for your decision on each of `approvals`; nothing of them is done yet."""

    session_id: str
    agent: str
    tool_calls: list[ToolCall] = Field(description="The calls made before the pause")
    approvals: list[PendingApproval]


class ApprovalPublic(PendingApproval):
    status: ApprovalStatus
    reason: str | None
    session_id: str
    run_id: int | None = Field(description="Set when the approval belongs to a background run")
    created_at: UtcDateTime
    expires_at: UtcDateTime = Field(description="Undecided by then, it counts as rejected")


Reason = Annotated[str, StringConstraints(max_length=500), AfterValidator(reject_nul)]


class ApprovalDecision(RequestBody):
    """Your answer to a proposed tool call."""

    approve: StrictBool = Field(description="true to let it happen, false to refuse it")
    reason: Reason | None = Field(
        default=None, description="Told to the agents when you reject the call"
    )


class ApprovalAnswer(ApprovalDecision):
    """A decision sent on the WebSocket: which approval it answers, and the answer."""

    approval: ConversationId = Field(description="The id of the approval this decides")


class ToolDescription(BaseModel):
    """A tool an agent may call, as the model is shown it."""

    name: str
    description: str
    parameters: dict[str, Any] = Field(description="The JSON Schema of the tool's arguments")
    only_in_background_runs: bool = Field(
        description="Offered to the model only in a background run (/runs), never in a chat"
    )
    needs_approval: bool = Field(
        description="A call waits for its owner's approval (APPROVAL_REQUIRED_TOOLS)"
    )


class AgentDescription(BaseModel):
    """One of the agents: what it is handed, whom it hands requests to, what it can call."""

    name: str
    handoff_description: str | None = Field(
        description="What the triage hands this agent; none for the triage itself"
    )
    handoffs: list[str] = Field(description="The agents it may hand a request to")
    tools: list[ToolDescription]


class AgentCapabilities(BaseModel):
    """The agents, the first of them the triage that every chat starts with."""

    agents: list[AgentDescription]


class TaskEvent(SQLModel, table=True):
    """A change to one user's tasks, kept for live streams in every process (and replays)."""

    __tablename__ = "task_event"
    __table_args__ = NEVER_REUSE_IDS

    id: int | None = Field(default=None, primary_key=True)  # the SSE event id
    owner_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    type: str = Field(max_length=20)
    data: dict[str, Any] = Field(sa_type=sa.JSON)
    created_at: datetime = Field(
        default_factory=utc_now, sa_type=sa.DateTime(timezone=True), index=True
    )
