import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from slowapi.errors import RateLimitExceeded

from task_api import auth, chat, tasks
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


app = FastAPI(
    title=get_settings().app_name,
    summary="A small API to keep track of tasks.",
    version="0.1.0",
    lifespan=lifespan,
)
app.state.limiter = limiter
app.include_router(auth.router)
app.include_router(tasks.router)
app.include_router(chat.router)


@app.exception_handler(TaskError)
async def handle_task_error(request: Request, exc: TaskError) -> JSONResponse:
    """Answer every TaskError with its status and FastAPI's usual body: {"detail": ...}."""
    return JSONResponse(status_code=exc.status_code, content={"detail": exc.detail})


@app.exception_handler(RateLimitExceeded)
async def handle_rate_limit_exceeded(request: Request, exc: RateLimitExceeded) -> JSONResponse:
    """The login limit was hit: slowapi notes on the request which limit, under which keys."""
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
