import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from slowapi.errors import RateLimitExceeded

from task_api import auth, tasks
from task_api.config import get_settings
from task_api.database import create_tables
from task_api.deps import SettingsDep
from task_api.errors import TaskError
from task_api.rate_limit import limiter, too_many_requests


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs once at start-up, before the first request: make sure the tables exist."""
    # create_tables() blocks on the database; run it off the event loop.
    await asyncio.to_thread(create_tables)
    yield


# No task, login or registration needs more. A larger body is refused with 413 as soon as it
# is seen, before it is read to the end, let alone parsed.
MAX_BODY_SIZE = 1024 * 1024  # 1 MiB

app = FastAPI(
    title=get_settings().app_name,
    summary="A small API to keep track of tasks.",
    version="0.1.0",
    lifespan=lifespan,
    max_body_size=MAX_BODY_SIZE,
)
app.state.limiter = limiter
app.include_router(auth.router)
app.include_router(tasks.router)

# A client fixing its request needs the first few problems, not thousands of them.
MAX_VALIDATION_ERRORS = 10


@app.exception_handler(RequestValidationError)
async def handle_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer 422 with where and what is wrong, but without the refused values.

    FastAPI's own handler echoes each refused value ("input"): a megabyte of text, a
    password, or a value that JSON cannot carry (NaN), which would turn the 422 into a 500.
    """
    errors = [
        {"type": error["type"], "loc": error["loc"], "msg": error["msg"]}
        for error in exc.errors()[:MAX_VALIDATION_ERRORS]
    ]
    return JSONResponse(status_code=422, content={"detail": errors})


@app.exception_handler(TaskError)
async def handle_task_error(request: Request, exc: TaskError) -> JSONResponse:
    """Answer every TaskError with its status and FastAPI's usual body: {"detail": ...}."""
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail})


@app.exception_handler(RateLimitExceeded)
async def handle_rate_limit_exceeded(request: Request, exc: RateLimitExceeded) -> JSONResponse:
    """A login or registration limit was hit: slowapi notes which limit, under which keys."""
    limit, keys = request.state.view_rate_limit
    error = too_many_requests(limit, *keys)
    return JSONResponse({"detail": error.detail}, status_code=429, headers=error.headers)


@app.get("/")
def read_root(settings: SettingsDep) -> dict[str, str]:
    """Say hello and point to the interactive documentation."""
    return {"message": f"Welcome to the {settings.app_name}", "docs": "/docs"}


@app.get("/health")
def read_health(settings: SettingsDep) -> dict[str, str]:
    """Tell a load balancer (or you) that the app is up, and in which environment."""
    return {"status": "ok", "environment": settings.environment}
