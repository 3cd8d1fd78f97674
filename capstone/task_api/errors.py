"""What can go wrong with a request, and how the API answers it: one family, one handler.

Each failure is a class with its status and its description. Routes raise them; the
handlers below turn them, and FastAPI's own errors, into `{"detail", "request_id"}`; and
the routes' `responses=` are built from the same classes, so the API document lists what
really comes back.
"""

import logging
from typing import Any

from asgi_correlation_id import correlation_id
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

logger = logging.getLogger(__name__)


class ErrorMessage(BaseModel):
    """The body of every error the API answers."""

    detail: str = Field(examples=["Task 42 not found"])
    request_id: str = Field(description="The X-Request-ID of the request, to find it in the logs")


class AppError(Exception):
    """A request the API refuses on purpose. Subclasses say why, with which status."""

    status_code = 400
    description = "The request breaks a rule of the API"
    headers: dict[str, str] | None = None
    close_code = 1008  # a WebSocket closed for it: policy violation (RFC 6455)

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotAuthenticated(AppError):
    status_code = 401
    description = "Missing or invalid credentials: a bearer token or an X-API-Key"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": "Bearer"}  # RFC 6750: a 401 names its scheme


class MissingScope(AppError):
    status_code = 403
    description = "The API key may not do this: it lacks the scope, or only a login may"

    @classmethod
    def lacking(cls, scope: str) -> "MissingScope":
        return cls(f"This API key may not do this: it lacks the scope '{scope}'")


class TooManyRequests(AppError):
    status_code = 429
    description = "Too many requests; the Retry-After header says how many seconds to wait"
    close_code = 1013  # try again later

    def __init__(self, limit: str, retry_after: int) -> None:
        super().__init__(f"Too many requests: the limit is {limit}")
        self.headers = {"Retry-After": str(retry_after)}


class TaskNotFound(AppError):
    status_code = 404
    description = "There is no task with this id"

    def __init__(self, task_id: int) -> None:
        super().__init__(f"Task {task_id} not found")


class DuplicateTask(AppError):
    status_code = 409
    description = "An open task already has this title"

    def __init__(self, title: str) -> None:
        super().__init__(f"An open task is already titled {title!r}")


class EmptyUpdate(AppError):
    status_code = 400
    description = "The body changes nothing"

    def __init__(self) -> None:
        super().__init__("Send at least one field to change")


class UsernameTaken(AppError):
    status_code = 409
    description = "The username is taken"

    def __init__(self, username: str) -> None:
        super().__init__(f"The username {username!r} is taken")


class ApiKeyNotFound(AppError):
    status_code = 404
    description = "There is no API key with this id"

    def __init__(self, key_id: int) -> None:
        super().__init__(f"API key {key_id} not found")


class ConversationNotFound(AppError):
    status_code = 404
    description = "There is no conversation with this id"

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"Conversation {conversation_id} not found")


class RunNotFound(AppError):
    status_code = 404
    description = "There is no run with this id"

    def __init__(self, run_id: int) -> None:
        super().__init__(f"Run {run_id} not found")


class RunFinished(AppError):
    status_code = 409
    description = "The run has already finished"

    def __init__(self, run_id: int, status: str) -> None:
        super().__init__(f"Run {run_id} has already finished: {status}")


class ApprovalNotFound(AppError):
    status_code = 404
    description = "There is no approval with this id"

    def __init__(self, approval_id: str) -> None:
        super().__init__(f"Approval {approval_id} not found")


class ApprovalClosed(AppError):
    status_code = 409
    description = "The approval was decided already, expired, or can no longer be used"


class WebhookRefused(AppError):
    status_code = 400
    description = "The webhook URL is refused"


class DatabaseUnavailable(AppError):
    status_code = 503
    description = "The database does not answer; the Retry-After header says when to try again"

    def __init__(self, detail: str = "The database does not answer") -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": "5"}


class AgentsBusy(AppError):
    status_code = 503
    description = "Every place for an agent turn is taken, and so is the queue: try again soon"
    close_code = 1013  # a WebSocket turn refused for it: try again later (RFC 6455)

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"The agents are busy with other chats: try again in {retry_after} s")
        self.headers = {"Retry-After": str(retry_after)}


class BadMessage(AppError):
    """A WebSocket message that is not a turn: the socket closes with `close_code`."""

    status_code = 400
    description = "The WebSocket message is not a turn"

    def __init__(self, detail: str, close_code: int) -> None:
        super().__init__(detail)
        self.close_code = close_code


class AgentRunFailed(AppError):
    status_code = 502
    description = "The model or its provider failed"


class AgentTimedOut(AgentRunFailed):
    status_code = 504
    description = "The model took longer than allowed"


# FastAPI answers these itself, for every route that reads a body.
BODY_ERRORS = {
    400: "The body could not be read (not UTF-8, or not what Content-Type says)",
    413: "The body is larger than MAX_BODY_BYTES",
}


def responses(
    *errors: type[AppError], reads_body: bool = False, streaming: bool = False
) -> dict[int | str, Any]:
    """The OpenAPI `responses=` for these errors; with `reads_body`, FastAPI's own 400 and 413
    first.

    `streaming`: the route streams its 200 (`text/event-stream`), and FastAPI would show a
    `model` in that media type; a stream's errors come before it starts, as JSON.
    """
    described = list(BODY_ERRORS.items()) if reads_body else []
    described += [(error.status_code, error.description) for error in errors]
    documented: dict[int | str, Any] = {}
    for status_code, description in described:
        if status_code in documented:  # two errors, one status: name both
            documented[status_code]["description"] += f"; {description.lower()}"
            continue
        documented[status_code] = {"description": description}
        if streaming:
            schema = {"$ref": "#/components/schemas/ErrorMessage"}
            documented[status_code]["content"] = {"application/json": {"schema": schema}}
        else:
            documented[status_code]["model"] = ErrorMessage
    return documented


def error_response(
    status_code: int, detail: Any, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The body of every error the API answers, `{"detail", "request_id"}`: made here only."""
    body = {"detail": detail, "request_id": correlation_id.get() or ""}
    return JSONResponse(body, status_code=status_code, headers=headers)


# A client fixing its request needs the first few problems, not thousands of them.
MAX_VALIDATION_ERRORS = 10


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def handle_app_error(request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def handle_validation_error(
        request: Request, exc: RequestValidationError
    ) -> JSONResponse:
        """422 with where and what is wrong, never with the refused value (lesson 03)."""
        errors = [
            {"type": error["type"], "loc": error["loc"], "msg": error["msg"]}
            for error in exc.errors()[:MAX_VALIDATION_ERRORS]
        ]
        return error_response(422, errors)

    @app.exception_handler(HTTPException)
    async def handle_http_exception(request: Request, exc: HTTPException) -> JSONResponse:
        """FastAPI's own errors: no such route (404) or method (405), a body it cannot read
        (400) or that is too large (413)."""
        return error_response(exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def handle_database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        """The database went away, or is too busy to answer: 503, and the client may retry."""
        logger.error("database unavailable: %s", type(exc.orig).__name__, exc_info=exc)
        return await handle_app_error(request, DatabaseUnavailable())

    @app.exception_handler(PoolTimeout)
    async def handle_pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        """Every connection of the pool is in use, for longer than POOL_TIMEOUT_SECONDS."""
        logger.error("database pool exhausted: %s", exc)
        return await handle_app_error(request, DatabaseUnavailable("The database is too busy"))

    @app.exception_handler(Exception)
    async def handle_anything_else(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error", exc_info=exc)
        # A 500 leaves through Starlette's outermost middleware, past the one that sets
        # X-Request-ID on every other response: set it here.
        request_id = {"X-Request-ID": correlation_id.get() or ""}
        return error_response(500, "Internal server error", request_id)
