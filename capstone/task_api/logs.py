"""Logs: one line per event, each with the request id of the request it belongs to.

LOG_FORMAT=json writes a JSON object per line, for a log collector; text is for a terminal.
A dozen lines of the standard library's logging do it; no logging package is needed.
The code logs no password, token, key or hash: what is not written cannot leak.
"""

import json
import logging
import sys
import time
from datetime import UTC, datetime

from asgi_correlation_id import CorrelationIdFilter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from task_api.config import Settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "correlation_id", None),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class WithoutQueryStrings(logging.Filter):
    """uvicorn logs each WebSocket handshake with its path and query string; a client may
    have put a credential there (`?token=...`), though this service never reads one from a
    URL. The query string is cut from every path uvicorn logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("uvicorn") and isinstance(record.args, tuple):
            record.args = tuple(
                arg.split("?", 1)[0] if isinstance(arg, str) and arg.startswith("/") else arg
                for arg in record.args
            )
        return True


TEXT_FORMAT = "%(asctime)s %(levelname)-7s [%(correlation_id)s] %(name)s: %(message)s"


def configure_logging(settings: Settings) -> None:
    """Send the app's and uvicorn's logs to stderr, in LOG_FORMAT, at LOG_LEVEL."""
    handler = logging.StreamHandler(sys.stderr)
    # Adds `correlation_id` to every record: the X-Request-ID of the request being answered.
    handler.addFilter(CorrelationIdFilter(default_value="-"))
    handler.addFilter(WithoutQueryStrings())
    formatter = (
        JsonFormatter() if settings.log_format == "json" else logging.Formatter(TEXT_FORMAT)
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    # uvicorn's own loggers pass their records to the root, so they get the same format.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Requests are logged by AccessLog below instead: without their query strings, which
    # may hold a token (the WebSocket's ?token=...).
    logging.getLogger("uvicorn.access").disabled = True


access_logger = logging.getLogger("task_api.access")


class AccessLog:
    """Log each request when it has been answered: method, path, status, milliseconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, note_status)
        finally:
            milliseconds = (time.perf_counter() - started) * 1000
            access_logger.info(
                "%s %s %d %.0f ms", scope["method"], scope["path"], status, milliseconds
            )
