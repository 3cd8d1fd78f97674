"""The app: `create_app(settings)` builds it, and its lifespan owns what outlives a request.

uvicorn task_api.main:app        fastapi dev task_api/main.py        (tests: create_app)
"""

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from asgi_correlation_id import CorrelationIdMiddleware
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from task_api import api
from task_api.admission import Admission
from task_api.agents.provider import open_model
from task_api.agents.team import TOOLS, build_agents
from task_api.config import Settings, read_settings
from task_api.database import create_db_engine, database_answers, migrate
from task_api.errors import (
    DatabaseUnavailable,
    error_response,
    install_error_handlers,
    responses,
)
from task_api.events import TaskEventBroker, open_notifier
from task_api.logs import AccessLog, configure_logging
from task_api.mcp_server import McpEndpoint, mcp_session_manager
from task_api.rate_limit import RateLimits
from task_api.runs.queue import RunQueue
from task_api.runs.worker import running_worker

logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Build what the requests share, once per process; close it at shutdown."""
    settings: Settings = app.state.settings
    # Here, once the server has set up its own logging (`fastapi run` does it after it has
    # built the app, and would turn uvicorn's access log, query strings and all, back on).
    configure_logging(settings)
    if settings.database_url.startswith("sqlite"):
        # The embedded set-up migrates itself; PostgreSQL is migrated by the operator, once,
        # before the API starts (`alembic upgrade head`; compose.yaml's `migrate`).
        await run_in_threadpool(migrate, settings.database_url)
    engine = create_db_engine(settings.database_url)
    async with AsyncExitStack() as resources:
        notifier = await resources.enter_async_context(open_notifier(settings, engine))
        model = await resources.enter_async_context(open_model(settings))
        app.state.engine = engine
        app.state.rate_limits = RateLimits(settings)
        app.state.admission = Admission(
            settings.agent_concurrency, settings.agent_queue_length, settings.agent_queue_seconds
        )
        app.state.broker = TaskEventBroker(engine, notifier)
        app.state.run_queue = RunQueue(engine, notifier, settings.run_lease_seconds)
        app.state.agents = build_agents(model, settings.approval_required_tools)
        app.state.mcp = mcp_session_manager(TOOLS, settings)
        await resources.enter_async_context(app.state.mcp.run())
        app.state.worker = None
        if settings.runs_in_process:
            app.state.worker = await resources.enter_async_context(
                running_worker(
                    settings, engine, app.state.run_queue, app.state.broker, app.state.agents
                )
            )
        yield
    engine.dispose()


def is_a_request_id(value: str) -> bool:
    """A client's X-Request-ID is kept when it is short and printable; else we make one."""
    return 0 < len(value) <= 64 and value.isascii() and value.isprintable()


class RefuseLargeBodies:
    """Answer 413 at once, in JSON, to a body whose Content-Length is over the limit.

    The API's routes stop any larger body while they read it (FastAPI's `max_body_size`);
    for one that says its size up front, Starlette would answer in plain text, without the
    X-Request-ID: here it is answered like every other error.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = Headers(scope=scope).get("content-length", "")
            if length.isdigit() and int(length) > self.max_body_bytes:
                response = error_response(413, "Content Too Large")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


# The groups of routes in /docs, in this order, each with a line on what it is for.
OPENAPI_TAGS = [
    {"name": "auth", "description": "Register, log in (OAuth2 password flow), and who you are."},
    {
        "name": "api keys",
        "description": "Keys for programs, with scopes: shown once, stored hashed; "
        "only a login makes or revokes them.",
    },
    {"name": "tasks", "description": "Your tasks, and their changes as Server-Sent Events."},
    {
        "name": "agent",
        "description": "Chat with the TaskManager agents, as one JSON answer or as "
        "Server-Sent Events; and what each agent can do.",
    },
    {
        "name": "conversations",
        "description": "Your conversations with the agents: newest first, read, renamed, deleted.",
    },
    {
        "name": "runs",
        "description": "Background runs: queued at once, carried out by a worker, "
        "followed as events, cancelled.",
    },
    {
        "name": "approvals",
        "description": "The tool calls that wait for your yes or no (delete_task): list "
        "them, decide one, and the turn or run goes on.",
    },
    {"name": "service", "description": "For whoever runs the service: up, and ready to serve."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for these settings (by default: the environment and .env)."""
    settings = settings or read_settings()
    app = FastAPI(
        title=settings.app_name,
        summary="Your tasks, kept by a team of AI agents and a REST API.",
        version="1.0.0",
        lifespan=lifespan,
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        openapi_tags=OPENAPI_TAGS,
    )
    app.state.settings = settings
    install_error_handlers(app)
    # The last one added runs first: request id, access log, trusted hosts, body limit, CORS.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "X-API-Key",
            "X-Request-ID",
            "Last-Event-ID",
        ],
        expose_headers=["X-Request-ID", "Retry-After", "Location"],
    )
    app.add_middleware(RefuseLargeBodies, max_body_bytes=settings.max_body_bytes)
    # A Host header the operator did not list gets 400: it cannot reach a redirect or a link.
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
    app.add_middleware(AccessLog)
    app.add_middleware(
        CorrelationIdMiddleware, header_name="X-Request-ID", validator=is_a_request_id
    )
    # FastAPI counts the bytes of a body as it reads it, and stops at the limit (413).
    # Any route of the API may find the database away: each documents its 503, as JSON even
    # where the route streams (`streaming=True`).
    app.include_router(
        api.router,
        max_body_size=settings.max_body_bytes,
        responses=responses(DatabaseUnavailable, streaming=True),
    )
    # The Task tools for MCP clients (mcp_server.py): an ASGI app of its own, at /mcp exactly.
    app.router.routes.append(Route("/mcp", McpEndpoint(), methods=["GET", "POST", "DELETE"]))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/", read_page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/health", read_health, methods=["GET"], tags=["service"])
    app.add_api_route(
        "/ready",
        read_ready,
        methods=["GET"],
        tags=["service"],
        responses=responses(DatabaseUnavailable),
    )
    return app


STATIC = Path(__file__).resolve().parent / "static"


def read_page() -> FileResponse:
    """The page: sign in, chat with the agents, watch your tasks and runs (static/)."""
    # The page loads only its own files: no inline script, nothing from elsewhere.
    policy = "default-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": policy})


async def read_health() -> dict[str, str]:
    """The process is up: this touches nothing, and answers even when the database does not.
    (`async def`: it needs no worker thread, so it answers even when they are all busy.)"""
    return {"status": "ok"}


async def read_ready(request: Request) -> dict[str, str]:
    """Ready for traffic: the database answers. A load balancer sends requests only then.

    With REDIS_URL, `redis` says whether Redis answers too. The service is ready without it
    (rate limits go uncounted, live events are polled for): an operator sees it here.
    """
    if not await run_in_threadpool(database_answers, request.app.state.engine):
        raise DatabaseUnavailable()
    ready = {"status": "ready"}
    if request.app.state.settings.redis_url is not None:
        answers = await request.app.state.rate_limits.storage_answers()
        ready["redis"] = "ok" if answers else "unavailable"
    return ready


@cache
def default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    # `uvicorn task_api.main:app` asks this module for `app`: it is built then, from your
    # settings, and not when a module (a test) imports this one.
    if name == "app":
        return default_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return [*globals(), "app"]  # `fastapi dev` looks for the app among the module's names
